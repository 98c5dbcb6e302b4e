//! A webhook endpoint's position, kept durably: the store it belongs to and
//! the last revision the endpoint acknowledged. Written to a temporary file,
//! synced, and renamed over the old one, so a crash leaves the old
//! position or the new one, never a torn file.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The saved position.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The store the revisions belong to.
    pub store_id: String,
    /// The last revision acknowledged.
    pub revision: u64,
}

/// Where one endpoint's position lives.
pub struct PositionFile {
    path: PathBuf,
}

impl PositionFile {
    /// The position file of endpoint `name` under `dir` (created if missing).
    pub fn open(dir: &Path, name: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(PositionFile { path: dir.join(format!("webhook-{name}.json")) })
    }

    /// The saved position, if any.
    pub fn load(&self) -> Result<Option<Position>, crate::error::Error> {
        use crate::error::Error;
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| Error::PositionCorrupt { path: self.path.clone(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::PositionUnreadable { path: self.path.clone(), source }),
        }
    }

    /// Saves `p` durably.
    pub fn save(&self, p: &Position) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(p).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_a_reopen_and_junk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = PositionFile::open(dir.path(), "crm").unwrap();
        assert_eq!(f.load().unwrap(), None);
        let p = Position { store_id: "s".into(), revision: 42 };
        f.save(&p).unwrap();
        assert_eq!(PositionFile::open(dir.path(), "crm").unwrap().load().unwrap(), Some(p));
        std::fs::write(dir.path().join("webhook-crm.json"), b"{").unwrap();
        assert!(f.load().is_err());
    }
}
