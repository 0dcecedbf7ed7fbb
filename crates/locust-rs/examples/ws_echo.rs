//! A loopback WebSocket echo server for benchmarks/ws_run.py: one tokio thread, tokio-tungstenite,
//! fast enough that the load generator, not the target, is what a benchmark measures.
//!
//!     cargo run --release --example ws_echo -- [PORT] [LIFETIME_S]
//!
//! Prints the port it listens on (127.0.0.1 only), echoes every text and binary message, and
//! exits by itself after LIFETIME_S seconds (default 600) so a forgotten server cannot linger.

use std::io::Write;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

async fn serve(tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    // A small read buffer: tungstenite zero-fills its free part before every read.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let lifetime: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let accept = async {
        loop {
            if let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp));
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(lifetime), accept).await;
    Ok(())
}
