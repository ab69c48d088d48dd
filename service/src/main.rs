//! `workload` binary: flags in, [`workload::Application`] out. The runtime is built by hand so its
//! worker count follows the container's CPU quota rather than the host's core count.

use std::process::ExitCode;

use clap::Parser;
use workload::config::{Cli, Command};
use workload::{Application, check_config, cpu, healthcheck, shutdown, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config;
    match cli.command {
        Some(Command::Healthcheck { timeout, path }) => {
            let target = healthcheck::probe_target(config.addr);
            // The server serves HTTPS exactly when it has a certificate: probe it the same way.
            let scheme = match config.tls_cert {
                Some(_) => healthcheck::Scheme::Https,
                None => healthcheck::Scheme::Http,
            };
            return match healthcheck::check_path(target, &path, timeout, scheme) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("workload healthcheck: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::CheckConfig) => {
            let problems = check_config::problems(&config);
            for problem in &problems {
                eprintln!("workload check-config: {problem}");
            }
            if problems.is_empty() {
                eprintln!(
                    "workload check-config: ok (api {}, metrics {})",
                    config.addr, config.metrics_addr
                );
                return ExitCode::SUCCESS;
            }
            return ExitCode::FAILURE;
        }
        Some(Command::Serve) | None => {}
    }
    if let Err(e) = config.validate() {
        eprintln!("workload: {e}");
        return ExitCode::from(2);
    }
    let telemetry = match telemetry::init(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("workload: {e}");
            return ExitCode::from(2);
        }
    };
    let quota = cpu::detect();
    let workers = config
        .worker_threads
        .map_or_else(|| quota.worker_threads(), |n| n as usize);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("workload-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("workload: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        worker_threads = workers,
        cpu_quota_cores = quota.cores,
        cpu_quota_source = ?quota.source,
        traces_exported = telemetry.tracing_exported(),
        "starting"
    );
    let result = runtime.block_on(async {
        let signals = shutdown::signal_with_escalation()?;
        let app = Application::build(config).await?;
        app.run_until_stopped(signals).await
    });
    // CPU jobs still spinning on the blocking pool must not hold the exit up; neither may a slow
    // trace collector. Both waits are bounded: see shutdown::SHUTDOWN_OVERHEAD.
    runtime.shutdown_timeout(shutdown::RUNTIME_STOP_TIMEOUT);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Unusable TLS files are bad input, like a bad flag.
        Err(e @ workload::startup::StartupError::Tls(_)) => {
            eprintln!("workload: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!(error = %e, "workload failed");
            eprintln!("workload: {e}");
            ExitCode::FAILURE
        }
    }
}
