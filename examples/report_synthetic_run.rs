//! Writes a made-up run (alerts.json, events.json) of N attack instances into DIR, for
//! `scripts/bench-report`: `cargo run --release --example report_synthetic_run -- N DIR`.

// The test's generator; the test also uses what this example does not (the hostile name).
#[allow(dead_code)]
#[path = "../tests/it/common/synthetic_run.rs"]
mod synthetic_run;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(dir)) = (args.get(1).and_then(|n| n.parse().ok()), args.get(2)) else {
        eprintln!("usage: report_synthetic_run N DIR");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);
    match std::fs::create_dir_all(dir).and_then(|_| synthetic_run::write_run(dir, n)) {
        Ok(w) => eprintln!(
            "{}: {} technique, {} signal, {} visibility alerts",
            dir.display(),
            w.techniques,
            w.signals,
            w.visibility
        ),
        Err(e) => {
            eprintln!("report_synthetic_run: {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
