//! Workstation speed at Organization scale: one frame, one filter keypress and one sort with
//! 10,000 and 100,000 instances loaded, and the memory those rows take.
//!
//! `cargo bench -p irf --bench workstation` (add `-- --quick` for a short run). The goals
//! (DESIGN.md): a frame under 16 ms, a keypress shown under 50 ms, under 150 MB at 100,000 rows.

use irf_engine::model::instance::InstanceState;
use std::hint::black_box;

use compact_str::format_compact;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use irf_engine::findings::{FindingSummary, Severity};
use irf_engine::inventory::{Instance, SecurityGroupRef, SsmReachability, SweepEvent, Tags};
use irf_tui::keymap::{Key, KeyName, Keymap};
use irf_tui::theme::Theme;
use irf_tui::workstation::app::{App, EngineEvent, Input};
use irf_tui::workstation::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const ROLES: [&str; 5] = ["web", "bastion", "db", "batch", "build"];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2"];

fn instance(n: usize) -> Instance {
    let role = ROLES[n % ROLES.len()];
    let account = format!("{:012}", 100_000_000_000 + (n % 500) as u64);
    let mut tags = Tags::default();
    tags.insert("Name".to_owned(), format!("prod-{role}-{n:06}"));
    tags.insert("Role".to_owned(), role.to_owned());
    tags.insert("Owner".to_owned(), format!("team-{}@example.com", n % 40));
    tags.insert(
        "Environment".to_owned(),
        ["prod", "staging", "dev"][n % 3].to_owned(),
    );
    Instance {
        id: format_compact!("i-{n:017x}"),
        name: Some(format_compact!("prod-{role}-{n:06}")),
        account: account.as_str().into(),
        account_name: format_compact!("member-{}", n % 500),
        region: REGIONS[n % REGIONS.len()].into(),
        availability_zone: Some(format_compact!("{}a", REGIONS[n % REGIONS.len()])),
        state: if n.is_multiple_of(7) {
            InstanceState::Stopped
        } else {
            InstanceState::Running
        },
        instance_type: "t3.medium".into(),
        platform: "Linux/UNIX".into(),
        image_id: Some("ami-0123456789abcdef0".into()),
        vpc_id: Some(format_compact!("vpc-{:017x}", n % 2000)),
        subnet_id: Some(format_compact!("subnet-{:017x}", n % 4000)),
        private_ip: Some(format_compact!(
            "10.{}.{}.{}",
            n % 250,
            (n / 250) % 250,
            n % 200 + 4
        )),
        public_ip: None,
        security_groups: vec![SecurityGroupRef {
            id: format_compact!("sg-{:017x}", n % 3000),
            name: "internal".into(),
        }],
        instance_profile_arn: Some(format_compact!(
            "arn:aws:iam::{account}:instance-profile/app-server"
        )),
        launch_time: Some("2026-11-01T00:00:00Z".into()),
        tags,
        ssm: if role == "bastion" {
            SsmReachability::NotManaged
        } else {
            SsmReachability::Online
        },
        findings: if n.is_multiple_of(50) {
            FindingSummary {
                open: 1,
                highest: Some(Severity::High),
            }
        } else {
            FindingSummary::default()
        },
    }
}

/// A workstation after a sweep of `count` instances, on a 200 x 50 terminal.
fn loaded(count: usize) -> App {
    let mut app = App::new(
        Keymap::load(None, false).expect("keymap"),
        false,
        "default-dark",
    );
    app.handle(Input::Resize {
        width: 200,
        height: 50,
    });
    app.start();
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        app.on_engine(EngineEvent::Sweep(SweepEvent::Instances {
            account: String::new(),
            region: String::new(),
            instances: chunk.iter().map(|&n| instance(n)).collect(),
        }));
    }
    app.on_engine(EngineEvent::Sweep(SweepEvent::Finished));
    app
}

fn key(c: char) -> Input {
    Input::Key(Key::char(c))
}

fn benches(c: &mut Criterion) {
    let theme = Theme::load("default-dark", None).expect("theme");
    for count in [10_000, 100_000] {
        let mut app = loaded(count);
        let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("terminal");

        c.bench_function(&format!("frame/{count}"), |b| {
            b.iter(|| {
                terminal
                    .draw(|frame| ui::draw(frame, black_box(&app), &theme))
                    .map(drop)
            });
        });

        // A keypress in the filter line re-filters every row, then the frame is drawn.
        c.bench_function(&format!("filter_keypress/{count}"), |b| {
            b.iter_batched(
                || {
                    let mut typing = app.clone();
                    typing.handle(key('/'));
                    for c in "prod-web-0".chars() {
                        typing.handle(key(c));
                    }
                    typing
                },
                |mut typing| {
                    typing.handle(key('1'));
                    let drawn = terminal
                        .draw(|frame| ui::draw(frame, &typing, &theme))
                        .map(drop);
                    // Returned, so dropping 100,000 rows is not counted as the keypress.
                    (typing, drawn)
                },
                BatchSize::LargeInput,
            );
        });

        c.bench_function(&format!("sort_keypress/{count}"), |b| {
            b.iter(|| {
                app.handle(key('>'));
                terminal
                    .draw(|frame| ui::draw(frame, &app, &theme))
                    .map(drop)
            });
        });

        c.bench_function(&format!("move_keypress/{count}"), |b| {
            b.iter(|| {
                app.handle(Input::Key(Key {
                    code: KeyName::PageDown,
                    ctrl: false,
                    alt: false,
                }));
                terminal
                    .draw(|frame| ui::draw(frame, &app, &theme))
                    .map(drop)
            });
        });

        // With the details open beside the table, a move draws the next row's details too.
        let mut with_details = app.clone();
        with_details.handle(Input::Key(Key {
            code: KeyName::Enter,
            ctrl: false,
            alt: false,
        }));
        c.bench_function(&format!("details_move_keypress/{count}"), |b| {
            b.iter(|| {
                with_details.handle(key('j'));
                terminal
                    .draw(|frame| ui::draw(frame, &with_details, &theme))
                    .map(drop)
            });
        });
    }
}

fn resident_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Memory of the rows: resident set before and after loading 100,000 instances.
fn memory(_: &mut Criterion) {
    let before = resident_kib("VmRSS:");
    let app = loaded(100_000);
    let after = resident_kib("VmRSS:");
    println!(
        "memory/100000: {:.1} MiB resident for the rows ({:.1} MiB before, {:.1} MiB after, {} rows)",
        (after.saturating_sub(before)) as f64 / 1024.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        app.instances.table.rows().len()
    );
}

criterion_group!(name = workstation; config = Criterion::default().sample_size(20); targets = memory, benches);
criterion_main!(workstation);
