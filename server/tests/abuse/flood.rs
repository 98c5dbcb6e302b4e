//! A connection flood: many connections opened at once and left silent;
//! half send the HTTP/2 preface and nothing more.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// What became of the flood's connections.
pub struct Flooded {
    /// Closed by the server at once (within 500 ms).
    pub refused: usize,
    /// Closed by the server later (a deadline).
    pub closed_later: usize,
    /// Still open after the wait.
    pub open: usize,
}

/// Opens `n` connections and waits up to `wait` for the server to close
/// them.
pub async fn run(addr: SocketAddr, n: usize, wait: Duration) -> Flooded {
    let mut tasks = Vec::new();
    for i in 0..n {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            continue;
        };
        let opened = Instant::now();
        if i % 2 == 1 {
            let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        }
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout_at((opened + wait).into(), s.read(&mut buf)).await {
                    Err(_) => return None,
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
                    Ok(Ok(_)) => {}
                }
            }
        }));
    }
    let mut f = Flooded { refused: 0, closed_later: 0, open: 0 };
    for t in tasks {
        match t.await.unwrap() {
            Some(d) if d < Duration::from_millis(500) => f.refused += 1,
            Some(_) => f.closed_later += 1,
            None => f.open += 1,
        }
    }
    f
}
