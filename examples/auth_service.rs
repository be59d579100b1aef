//! A minimal Redis-backed authentication service for nginx `auth_request`: the
//! two-hop design (nginx → auth service → Redis, then nginx → application) that
//! Authelia- or oauth2-proxy-style deployments use, as `scripts/bench.sh`'s
//! point of comparison. Deliberately as cheap as such a service can be: one
//! current-thread runtime, hand-parsed HTTP/1.1 keep-alive, one multiplexed Redis
//! connection, no logging.
//!
//! `GET` anything with `Cookie: session=TOKEN`: 200 with `X-User: NAME` when
//! Redis holds `authsess:TOKEN` = NAME, else 401.
//! Usage: auth_service LISTEN REDIS_URL

use mimalloc::MiMalloc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// The same allocator as the gateway and the bare Pingora reference.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The `session` cookie's value in a request head, if any.
fn session_token(head: &[u8]) -> Option<&[u8]> {
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for pair in line[colon + 1..].split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if let Some(v) = pair.strip_prefix(b"session=") {
                return Some(v);
            }
        }
    }
    None
}

async fn serve(mut sock: TcpStream, mut redis: redis::aio::MultiplexedConnection) {
    let _ = sock.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut key = Vec::with_capacity(96);
    loop {
        // One request head at a time (auth_request subrequests carry no body).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let user: Option<Vec<u8>> = match session_token(&buf[..end]) {
            Some(t) => {
                key.clear();
                key.extend_from_slice(b"authsess:");
                key.extend_from_slice(t);
                redis::cmd("GET")
                    .arg(&key[..])
                    .query_async(&mut redis)
                    .await
                    .unwrap_or(None)
            }
            None => None,
        };
        buf.drain(..end);
        let mut out = Vec::with_capacity(128);
        match user {
            Some(u) => {
                out.extend_from_slice(b"HTTP/1.1 200 OK\r\nX-User: ");
                out.extend_from_slice(&u);
                out.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
            }
            None => {
                out.extend_from_slice(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            }
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(url)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: auth_service LISTEN REDIS_URL");
        std::process::exit(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    let result: Result<(), Box<dyn std::error::Error>> = rt.block_on(async {
        let redis = redis::Client::open(url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (sock, _) = listener.accept().await?;
            tokio::spawn(serve(sock, redis.clone()));
        }
    });
    if let Err(e) = result {
        eprintln!("auth_service: {e}");
        std::process::exit(1);
    }
}
