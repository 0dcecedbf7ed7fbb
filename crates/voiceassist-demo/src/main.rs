//! `voiceassist-demo`: serves the VoiceAssist demo API until Ctrl-C, SIGTERM, or (with
//! `--stdin-control`) the end of standard input.
//!
//! Exit codes: 0 after a clean stop, 2 for a usage error or an address that cannot be bound, 3 for
//! a setting that would make the server useless (the message names it).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::sync::watch;
use voiceassist_demo::{Config, RealtimeCounters, Server, StartError};

/// Serve the VoiceAssist demo API until Ctrl-C or SIGTERM.
#[derive(Parser)]
#[command(name = "voiceassist-demo", version)]
struct Cli {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind, 0 for any free one (the first line printed names it).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Tokio worker threads of the server. One keeps a loopback benchmark from taking every core
    /// of a small machine; raise it for a bigger target.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: u16,
    /// Seconds open connections get to finish once the server is told to stop; then they are
    /// dropped.
    #[arg(long, default_value_t = 5.0)]
    shutdown_timeout: f64,
    /// Also stop when standard input ends, and answer a `stats` line on it with the realtime
    /// counters as one JSON line (how `locust_rs.demo.start()` runs the server as its child: the
    /// server dies with its parent on every platform).
    #[arg(long)]
    stdin_control: bool,
    /// Print the OpenAPI document (what /openapi.json serves) and exit.
    #[arg(long)]
    print_openapi: bool,
    /// Print the server settings the other options give (with no other option: every default) as
    /// one JSON object, and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    config: Config,
}

const EXIT_USAGE: u8 = 2;
const EXIT_BAD_SETTING: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::InvalidValue | ErrorKind::ValueValidation => EXIT_BAD_SETTING,
                _ => EXIT_USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.print_openapi {
        return print_or_fail(voiceassist_demo::openapi_json());
    }
    if cli.print_config {
        return print_or_fail(serde_json::to_string(&cli.config).map_err(|e| e.to_string()));
    }
    let Some(grace) = Duration::try_from_secs_f64(cli.shutdown_timeout).ok() else {
        eprintln!("voiceassist-demo: shutdown_timeout must be a number of seconds >= 0");
        return ExitCode::from(EXIT_BAD_SETTING);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(cli.worker_threads))
        .thread_name("voiceassist-demo")
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(run(cli, grace)),
        Err(e) => {
            eprintln!("voiceassist-demo: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_or_fail(text: Result<String, String>) -> ExitCode {
    match text {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("voiceassist-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, grace: Duration) -> ExitCode {
    let exposed = cli.config.exposure_warning(&cli.host);
    let server = match Server::bind(&cli.host, cli.port, cli.config).await {
        Ok(server) => server,
        Err(e) => {
            // under --stdin-control the parent reads standard output, and only that
            if cli.stdin_control {
                println!("voiceassist-demo: {e}");
            } else {
                eprintln!("voiceassist-demo: {e}");
            }
            return ExitCode::from(match e {
                StartError::Config(_) => EXIT_BAD_SETTING,
                StartError::Listen(_) => EXIT_USAGE,
            });
        }
    };
    // the first line is how scripts and locust_rs.demo learn the port
    println!(
        "VoiceAssist demo server listening on http://{}",
        server.local_addr()
    );
    let _ = std::io::stdout().flush();
    // on standard error: the first line of standard output is the one scripts read
    if let Some(warning) = exposed {
        eprintln!("{warning}");
    }

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        stop_signal().await;
        on_signal.send_replace(true);
    });
    let counters = server.realtime();
    if cli.stdin_control {
        let counters = counters.clone();
        // std's blocking stdin on a thread of its own: tokio's would hold a runtime thread
        let spawned = std::thread::Builder::new()
            .name("stdin-control".into())
            .spawn(move || stdin_control(&counters, &stop_tx));
        if let Err(e) = spawned {
            eprintln!("voiceassist-demo: cannot watch standard input: {e}");
            return ExitCode::FAILURE;
        }
    }

    let mut stopped = stop_rx.clone();
    let serving = server.serve(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    tokio::pin!(serving);
    let clean = tokio::select! {
        () = &mut serving => true,
        _ = async {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => false,
    };
    if cli.stdin_control {
        // the final counters, so that the parent can still report them once the server is gone
        print_stats(&counters);
    }
    if clean {
        println!("VoiceAssist demo server stopped");
        ExitCode::SUCCESS
    } else {
        println!(
            "VoiceAssist demo server stopped: connections still open after {grace:?} were dropped"
        );
        ExitCode::from(1)
    }
}

/// Ctrl-C, and SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The realtime counters as one line of JSON on standard output.
fn print_stats(counters: &RealtimeCounters) {
    let json = serde_json::to_string(&counters.snapshot())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{json}");
    let _ = out.flush();
}

/// Answers `stats` lines until standard input ends or says `stop`; either stops the server.
fn stdin_control(counters: &RealtimeCounters, stop: &watch::Sender<bool>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "stop" => break,
            "stats" => print_stats(counters),
            _ => {}
        }
    }
    stop.send_replace(true);
}
