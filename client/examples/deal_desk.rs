//! A downstream service that keeps a mirror of the cyber list and reacts
//! to a cut: it holds open deals, answers "may we ship?" in-process, and
//! freezes every open deal whose destination stops being eligible the
//! moment the change takes effect.
//!
//! Run the demo server, then this example:
//!
//! ```sh
//! cargo run --release --bin eligibility-server -- --demo
//! cargo run --release -p eligibility-client --example deal_desk
//! ```
//!
//! and, in a third terminal, cut Japan from the list:
//!
//! ```sh
//! printf 'list,country,action\ncyber,JP,remove\n' | \
//!   cargo run --release --bin eligctl -- apply - --reason "demo cut"
//! ```

use std::collections::BTreeMap;

use eligibility_client::{Change, Client, Country, EntryAction, ListId, MirrorOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let cyber = ListId::parse("cyber")?;
    let client = Client::connect(url).await?;
    let mirror = client.mirror(MirrorOptions::default().with_list(cyber.clone())).await?;
    println!("mirroring {} at revision {}", cyber, mirror.revision());

    // Open deals by destination.
    let mut deals: BTreeMap<&str, Country> = BTreeMap::new();
    for (id, dest) in [("Q-1001", "JP"), ("Q-1002", "FR"), ("Q-1003", "MX"), ("Q-1004", "JP")] {
        deals.insert(id, Country::parse(dest)?);
    }
    for (id, dest) in &deals {
        let d = mirror.check(&cyber, *dest)?;
        println!("{id} -> {dest}: {}", if d.eligible { "may ship" } else { "BLOCKED" });
    }

    let mut changes = mirror.subscribe();
    loop {
        let applied = changes.recv().await?;
        let removed: Vec<Country> = applied
            .changeset
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Entry { list, country, action: EntryAction::Remove, .. } if *list == cyber => Some(*country),
                _ => None,
            })
            .collect();
        if removed.is_empty() {
            continue;
        }
        if !applied.in_effect {
            println!(
                "revision {}: {:?} will be removed at {} — deals stay open until then",
                applied.changeset.revision, removed, applied.changeset.effective_at
            );
            continue;
        }
        for (id, dest) in &deals {
            if removed.contains(dest) && !mirror.check(&cyber, *dest)?.eligible {
                println!(
                    "FREEZE {id}: {dest} removed from {cyber} at revision {} ({})",
                    applied.changeset.revision, applied.changeset.reason
                );
            }
        }
    }
}
