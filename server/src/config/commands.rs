//! The one-shot commands (`token new`, `token hash`, `descriptor-set
//! FILE`): subcommands of `eligibility-server`, and the deprecated flags
//! that still ask for them.

use std::path::PathBuf;

use super::Settings;

/// The one-shot commands: each does its work and exits, serving nothing.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Bearer tokens for the tokens file.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write the API's descriptor set (a protoset, e.g. for
    /// `grpcurl -protoset` or a dynamic client) to FILE.
    DescriptorSet {
        /// Where to write it.
        file: PathBuf,
    },
}

/// `eligibility-server token ...`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Print a new random token and its SHA-256 (the tokens file keeps the
    /// hash, the caller the token).
    New,
    /// Read a token on stdin and print its SHA-256.
    Hash,
}

impl Settings {
    /// The one-shot command asked for, by subcommand or by one of the
    /// deprecated flags (`--new-token`, `--hash-token`,
    /// `--write-descriptor-set`, kept working for a release).
    pub fn one_shot(&self) -> Option<Command> {
        if let Some(c) = &self.command {
            return Some(c.clone());
        }
        if self.new_token {
            return Some(Command::Token(TokenCommand::New));
        }
        if let Some(file) = &self.write_descriptor_set {
            return Some(Command::DescriptorSet { file: file.clone() });
        }
        self.hash_token.then_some(Command::Token(TokenCommand::Hash))
    }
}
