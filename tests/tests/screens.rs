//! The workstation as a responder meets it: the real binary in a real terminal, at 80x24 and
//! at 200x50, every view and every dialog reached by keys against the lab, each asserting that
//! what identifies its rows, and what a decision depends on, is on screen.

use std::sync::OnceLock;
use std::time::Duration;

use irf_e2e::{TerminalSession, acquire_memory_only, irf_json, json_of, lab, lab_env, suspect};

/// What the walk expects to find, set up once for both sizes.
struct Scene {
    instance_id: String,
    instance_name: String,
    account_name: String,
    /// The suspect's reverse-shell finding: its title and id (its details show them whole).
    finding_title: String,
    finding_id: String,
    /// A memory case that has ended (nothing to approve; its containment can be rolled back).
    ended_case: String,
    /// The first action of the ended case's custody ledger.
    first_ledger_action: String,
    /// A memory case of the same instance that waits for its containment's approval.
    waiting_case: String,
    /// The analysis host launched for the ended case.
    host_id: String,
    /// The image version the lab's pipeline holds.
    image_version: String,
}

fn text(value: &serde_json::Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

fn scene() -> &'static Scene {
    static SCENE: OnceLock<Scene> = OnceLock::new();
    SCENE.get_or_init(|| {
        let state = lab();
        let suspect = suspect(state);
        let account_name = state
            .seeded
            .members
            .iter()
            .find(|m| m.id == suspect.account)
            .expect("the suspect's account")
            .name
            .clone();
        let finding = irf_e2e::suspects_reverse_shell_finding();
        let ended = json_of("irf acquire (memory only)", &acquire_memory_only(suspect));
        let ended_case = text(&ended, "case_id");
        let ledger = irf_json(&["case", &ended_case, "--json"]);
        let first_ledger_action = text(&ledger["ledger"][0], "action");
        let waiting = irf_json(&[
            "acquire",
            "--instance",
            &suspect.id,
            "--account",
            suspect.account.as_str(),
            "--no-disk",
            "--containment",
            "approval",
            "--wait",
            "--json",
        ]);
        let waiting_case = text(&waiting, "case_id");
        assert_ne!(
            waiting_case, ended_case,
            "a second case, not the first again"
        );
        let host = irf_json(&["hosts", "launch", "--case", &ended_case, "--json"]);
        let images = irf_json(&["images", "--json"]);
        let image_version = images["images"]
            .as_array()
            .and_then(|images| images.first())
            .map(|image| text(image, "version"))
            .unwrap_or_else(|| panic!("no image in {images}"));
        Scene {
            instance_id: suspect.id.clone(),
            instance_name: suspect.name.clone(),
            account_name,
            finding_title: text(&finding, "title"),
            finding_id: text(&finding, "id"),
            ended_case,
            first_ledger_action,
            waiting_case,
            host_id: text(&host, "instance_id"),
            image_version,
        }
    })
}

/// How long a screen may take to show what a key asked for: a view reloads from the lab.
const SHOWN: Duration = Duration::from_secs(20);

/// A terminal of one size, walked view by view.
struct Walk {
    terminal: TerminalSession,
    size: &'static str,
}

impl Walk {
    fn start(rows: u16, cols: u16, size: &'static str) -> Self {
        let terminal = TerminalSession::start(&[], &lab_env(lab()), rows, cols);
        terminal.wait_for("refreshed", Duration::from_secs(60));
        Self { terminal, size }
    }

    /// Types `keys`, waits until the screen shows `shown` and every one of `identifying` (a
    /// frame can be caught half drawn), and returns the screen.
    fn expect(&mut self, keys: &str, shown: &str, identifying: &[&str]) -> String {
        self.terminal.send(keys);
        let deadline = std::time::Instant::now() + SHOWN;
        loop {
            let screen = self.terminal.screen();
            let missing: Vec<&str> = std::iter::once(shown)
                .chain(identifying.iter().copied())
                .filter(|value| !screen.contains(value))
                .collect();
            if missing.is_empty() {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "at {} after {keys:?}, {missing:?} not on screen within {SHOWN:?}:\n{screen}",
                self.size
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen is as `shown` says, naming `what` if it never is.
    fn wait_until(&self, what: &str, shown: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + SHOWN;
        loop {
            let screen = self.terminal.screen();
            if shown(&screen) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "at {}, {what} not on screen within {SHOWN:?}:\n{screen}",
                self.size
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Closes a dialog with esc and waits until its title is gone.
    fn dismiss(&mut self, title: &str) {
        self.terminal.send("\u{1b}");
        let deadline = std::time::Instant::now() + SHOWN;
        while self.terminal.screen().contains(title) {
            assert!(
                std::time::Instant::now() < deadline,
                "at {}, esc did not close '{title}':\n{}",
                self.size,
                self.terminal.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The details panel's text, its lines joined without whitespace: a value wrapped
    /// over lines (an ARN, a title) reads whole in it.
    fn details_panel(&self) -> String {
        self.terminal
            .panel("details")
            .unwrap_or_default()
            .concat()
            .split_whitespace()
            .collect()
    }

    /// Gives the open details panel the keys (tab), scrolls it down a field at a time until
    /// `value` reads whole in it, and gives the keys back to the list. Each step waits for
    /// the panel to move, so that keys never run ahead of the screen.
    fn scroll_details_to(&mut self, value: &str) {
        let wanted: String = value.split_whitespace().collect();
        self.terminal.send("\t");
        let deadline = std::time::Instant::now() + SHOWN;
        let mut panel = self.details_panel();
        while !panel.contains(&wanted) {
            let screen = self.terminal.screen();
            assert!(
                !screen.contains(" ↓0 "),
                "at {}, the details end without '{value}':\n{screen}",
                self.size
            );
            self.terminal.send("j");
            let before = panel;
            loop {
                panel = self.details_panel();
                if panel != before {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "at {}, j did not scroll the details towards '{value}':\n{}",
                    self.size,
                    self.terminal.screen()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.terminal.send("\t");
    }

    /// Closes the details panel (enter again) and waits until it is gone.
    fn close_details(&mut self) {
        self.terminal.send("\r");
        let deadline = std::time::Instant::now() + SHOWN;
        while self.terminal.panel("details").is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "at {}, enter did not close the details:\n{}",
                self.size,
                self.terminal.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens a dialog with `key`, scrolls it to its end with the down arrow, and returns every
    /// screen it showed: each with the answer line `answer` in sight.
    fn read_dialog(&mut self, key: &str, title: &str, answer: &str) -> Vec<String> {
        let mut screens = vec![self.expect(key, title, &[answer])];
        while screens
            .last()
            .is_some_and(|s| s.contains(" below: ") && !s.contains(", 0 below: "))
        {
            let before = self.terminal.screen();
            self.terminal.send("\u{1b}[B");
            let deadline = std::time::Instant::now() + SHOWN;
            let mut screen = self.terminal.screen();
            while screen == before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "at {}, the down arrow did not scroll '{title}':\n{screen}",
                    self.size
                );
                std::thread::sleep(Duration::from_millis(50));
                screen = self.terminal.screen();
            }
            assert!(
                screen.contains(answer),
                "at {}, scrolling '{title}' lost its answer line:\n{screen}",
                self.size
            );
            screens.push(screen);
        }
        screens
    }

    /// Opens a dialog with `key`, reads it to its end, checks each of `naming` shows in it
    /// at some scroll, and closes it with esc.
    fn dialog(&mut self, key: &str, title: &str, answer: &str, naming: &[&str]) {
        let screens = self.read_dialog(key, title, answer);
        for value in naming {
            assert!(
                on_some(&screens, value),
                "at {}, '{value}' never shows in '{title}':\n{screens:#?}",
                self.size
            );
        }
        self.dismiss(title);
    }

    fn quit(mut self) {
        self.terminal.send("q");
        assert!(
            self.terminal.wait_exit(Duration::from_secs(20)),
            "irf exits with success at {}",
            self.size
        );
    }
}

/// Whether `needle` is on one of `screens`.
fn on_some(screens: &[String], needle: &str) -> bool {
    screens.iter().any(|s| s.contains(needle))
}

/// Every view and dialog at one size.
fn walk(rows: u16, cols: u16, size: &'static str) {
    let scene = scene();
    let mut walk = Walk::start(rows, cols, size);

    // Instances: the suspect by id and name, its detail, the acquisition dialog.
    walk.expect(
        &format!("/{}\r", scene.instance_id),
        "instances (1/",
        &[&scene.instance_id, &scene.instance_name],
    );
    walk.expect("\r", "┌ details", &[&scene.account_name]);
    walk.scroll_details_to("launched");
    walk.close_details();
    walk.dialog(
        "a",
        "Acquire memory and disk",
        "to go ahead",
        &[&scene.instance_id, "From a script:"],
    );

    // Findings: the suspect's finding, in full in its detail; the resolve dialog.
    walk.expect("2", "findings (", &[]);
    walk.expect(
        &format!("/{} reverse\r", scene.instance_id),
        "findings (1/",
        &["CRITICAL"],
    );
    walk.expect("\r", "description", &[]);
    walk.scroll_details_to(&scene.finding_title);
    walk.scroll_details_to(&scene.finding_id);
    walk.dialog("R", "Resolve finding", "to go ahead", &["irf resolve"]);
    walk.close_details();

    // Accounts: the suspect's account by id and name.
    walk.expect(
        "3",
        "accounts (",
        &[lab().seeded.security.as_str(), &scene.account_name],
    );

    // Cases: both cases of the instance, whole ids; the ended one opened.
    walk.expect(
        &format!("4/{}\r", scene.instance_id),
        "cases (",
        &[&scene.ended_case, &scene.waiting_case, "awaiting approval"],
    );
    walk.expect(&format!("/\u{15}{}\r", scene.ended_case), "cases (1/", &[]);
    walk.expect("\r", "artifacts (", &[&scene.ended_case, "memory"]);
    walk.expect("V", "items verified at", &[&scene.ended_case]);
    walk.expect("\t", &scene.first_ledger_action, &[]);
    // The analysis panel, not the custody ledger (whose entries, numbered #1 on, name the
    // host too): the host with no custody entry left on screen.
    walk.terminal.send("\t");
    walk.wait_until("the analysis panel with the host", |screen| {
        screen.contains(&scene.host_id) && !screen.contains("│#")
    });
    walk.expect("\t", "verified      ", &[]);
    walk.dialog(
        "l",
        "Launch an analysis host",
        "to go ahead",
        &[&scene.ended_case],
    );
    walk.dialog(
        "U",
        "Roll back containment",
        "instance id",
        &[&scene.instance_id],
    );

    // Approvals: the waiting case; the plan whole, then the refusal.
    walk.expect(
        &format!("5/{}\r", scene.waiting_case),
        "approvals (1/",
        &[&scene.instance_id],
    );
    walk.dialog(
        "A",
        "Approve containment",
        "instance id: ",
        &[
            &scene.instance_id,
            &scene.waiting_case,
            "replace security groups",
            "swap instance profile",
            "rollback (U in the case view) restores it",
            "Type the instance id to approve",
            "From a script: irf approve",
        ],
    );
    walk.dialog("X", "Refuse containment", "reason", &[&scene.waiting_case]);

    // Evidence: the ended case's memory artifact, its detail, the legal hold dialog.
    walk.expect(
        &format!("6/{}\r", scene.ended_case),
        "evidence (1/",
        &[&scene.ended_case, "memory"],
    );
    walk.expect("\r", "sha256", &[]);
    walk.scroll_details_to("retention");
    walk.dialog("H", "Place legal hold", "to go ahead", &[&scene.ended_case]);
    walk.close_details();

    // Images: the pipeline's image; the build dialog.
    walk.expect("7", &scene.image_version, &["AVAILABLE"]);
    walk.dialog(
        "b",
        "Start an image build",
        "to go ahead",
        &["pipeline ", "irf images build"],
    );

    // Hosts: the host and its case, its detail, the terminate dialog.
    walk.expect(
        &format!("8/{}\r", scene.host_id),
        "hosts (1/",
        &[&scene.host_id],
    );
    walk.expect("\r", "┌ details", &[]);
    walk.scroll_details_to(&scene.ended_case);
    walk.scroll_details_to("launched");
    walk.dialog(
        "T",
        "Terminate analysis host",
        "instance id",
        &[&scene.host_id],
    );

    // From the instance, `o` names its related views; its hosts open filtered to it.
    walk.expect("1", "instances (1/", &[&scene.instance_id]);
    let related = format!("/{}", scene.instance_id);
    let picker = walk.expect("o", "Related rows", &[&related]);
    for view in ["2  findings", "4  cases", "6  evidence", "8  hosts"] {
        assert!(
            picker
                .lines()
                .any(|line| line.contains(view) && line.contains(&related)),
            "at {size}, '{view}' related by {related}:\n{picker}"
        );
    }
    walk.expect("8", &format!("hosts (1/1) {related}"), &[&scene.host_id]);

    // Help and the command line.
    walk.expect("?", " help (", &[]);
    walk.dismiss(" help (");
    walk.expect(":evid\t", ":evidence", &[]);
    walk.expect("\r", "evidence (", &[]);
    walk.quit();
}

#[test]
fn every_view_and_dialog_reads_whole_at_80x24() {
    walk(24, 80, "80x24");
}

#[test]
fn every_view_and_dialog_reads_whole_at_200x50() {
    walk(50, 200, "200x50");
}
