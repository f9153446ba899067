//! `irf-memcap`: the memory capture tool published to the tooling bucket (template 4) and run
//! on a suspect host through SSM: `irf-memcap memcap --source /proc/kcore --iomem /proc/iomem
//! --plan plan.json`. It prints its report as one JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut source = PathBuf::from("/proc/kcore");
    let mut iomem = PathBuf::from("/proc/iomem");
    let mut plan = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "memcap" => {}
            "--source" => source = args.next().map(PathBuf::from).unwrap_or(source),
            "--iomem" => iomem = args.next().map(PathBuf::from).unwrap_or(iomem),
            "--plan" => plan = args.next().map(PathBuf::from),
            other => {
                eprintln!(
                    "irf-memcap: unknown argument '{other}': use memcap --source FILE --iomem FILE --plan FILE"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(plan) = plan else {
        eprintln!("irf-memcap: --plan FILE is required (the upload plan the workflow sends)");
        return ExitCode::from(2);
    };
    match irf_forensics::memcap::run(&source, &iomem, &plan) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("irf-memcap: cannot print the report: {err}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("irf-memcap: {err}");
            ExitCode::FAILURE
        }
    }
}
