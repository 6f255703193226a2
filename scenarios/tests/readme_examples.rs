//! The README's examples run as written. Every command line of its `sh` blocks is
//! either run here — in order, in a copy of `config/`, against the daemon section's
//! `wssim hardware` and `workstation serve` — or named in [`ELSEWHERE`] with where
//! it is exercised instead; a new example that is neither fails this test. A
//! `cargo run -p PKG --bin BIN --` prefix runs the built BIN (what cargo would run);
//! an optional part `[--flag]` is run both without and with it (unless it names a
//! placeholder in capitals); each command must exit 0 unless [`EXPECTED`] says
//! otherwise, with the README's reason.

use dispense_proto::v1 as pb;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Examples not run here, by their start, and where they are exercised.
const ELSEWHERE: &[(&str, &str)] = &[
    ("./scripts/test", "the test suite itself: what CI runs"),
    ("cargo install --path diag", "installs into ~/.cargo/bin; this test runs the built wsctl"),
    ("cargo run -p scenarios --bin wssim -- serve", "the controller on in-process devices, on the port the daemon of this session holds; the demo above runs the same assembly"),
    ("cargo run -p scenarios --bin wssim -- run", "every library scenario is run (twice) by the library test"),
    ("cargo run -p scenarios --bin wssim -- hunt", "200 seeds take minutes: the hunt test runs seeds and the shrinker"),
    ("cargo bench", "benchmarks print figures and take minutes each"),
    ("cargo run --release -p scenarios --bin wssim -- sweep", "25 points take minutes: scenarios/tests/sweep.rs runs a 2x2 sweep through the same command"),
    ("wsctl completions bash > /etc/", "writes a system folder; `wsctl completions bash` runs here to stdout"),
    ("wsctl watch", "runs until stopped: run here with a deadline, below"),
];

/// Commands that exit non-zero as the README says, and why.
const EXPECTED: &[(&str, &[i32], &str)] = &[
    ("wsctl clear CV-02@conveyor", &[5], "no such device alarm is active in a healthy session (the README says 5)"),
    ("workstation -- decode", &[0, 1], "1 when the snapshot shows no code (the README says so)"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The built binaries live beside this test's own folder (target/<profile>/).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let dir = exe.parent().and_then(Path::parent).expect("target folder");
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built: run the whole workspace's tests (cargo test --workspace)", path.display());
    path
}

/// The README's `sh` command lines, comments and continuation removed, in order.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh" && !in_sh;
            continue;
        }
        if in_sh {
            // A comment starts at " # " outside quotes (the README's examples quote no '#').
            let command = line.split(" # ").next().unwrap_or_default().trim();
            let command = command.strip_suffix('#').unwrap_or(command).trim();
            if !command.is_empty() && !command.starts_with('#') {
                commands.extend(command.split(" ; ").map(|c| c.trim().to_owned()));
            }
        }
    }
    commands
}

/// The forms to run: without each optional `[...]` part, and with each (unless a
/// placeholder in capitals stands in it).
fn forms(command: &str) -> Vec<String> {
    let mut base = String::new();
    let mut optional = Vec::new();
    let mut rest = command;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map(|c| open + c).expect("a closed [");
        base.push_str(&rest[..open]);
        optional.push(rest[open + 1..close].to_owned());
        rest = &rest[close + 1..];
    }
    base.push_str(rest);
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = vec![base.clone()];
    for part in optional {
        let placeholder = part.split_whitespace().any(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase()));
        if !placeholder {
            out.push(format!("{base} {part}"));
        }
    }
    out
}

/// The command as bash runs it: `cargo run -p PKG --bin BIN --` and a leading
/// `wsctl` become the built binaries.
fn runnable(command: &str) -> String {
    let mut text = command.to_owned();
    for bin in ["wssim", "workstation", "wsctl"] {
        let path = binary(bin).display().to_string();
        for pkg in ["scenarios", "controller", "diag"] {
            text = text.replace(&format!("cargo run -p {pkg} --bin {bin} --"), &path);
        }
    }
    // `wsctl` at the start of a command (or after VAR=value assignments).
    let words: Vec<&str> = text.splitn(2, ' ').collect();
    if words.first() == Some(&"wsctl") {
        text = format!("{} {}", binary("wsctl").display(), words.get(1).unwrap_or(&""));
    }
    text
}

fn expected_codes(command: &str) -> (&'static [i32], &'static str) {
    EXPECTED.iter().find(|(start, ..)| command.contains(start)).map_or((&[0], "the README shows it succeeding"), |(_, codes, why)| (*codes, *why))
}

/// A process that is stopped (SIGKILL) when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn background(dir: &Path, command: &str) -> Background {
    let log = std::fs::File::create(dir.join(format!("{}.log", command.split_whitespace().nth(4).unwrap_or("bg")))).expect("log");
    let child = Command::new("bash").arg("-c").arg(format!("exec {}", runnable(command))).current_dir(dir).stdout(log.try_clone().expect("log")).stderr(log).spawn().expect("starts");
    Background(child)
}

/// Polls `check` until it holds or the deadline passes.
fn until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < deadline, "{what} within {deadline:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One dispense given, as a clinic would: D000001 for patient P0001, so the
/// examples that name them find them.
fn one_dose_given() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let channel = dispense_proto::client::connect("http://127.0.0.1:50051", Some("dev-clinic"), None).await.expect("clinic connects");
        let mut clinic = pb::dispensing_service_client::DispensingServiceClient::new(channel);
        let born = chrono::Utc::now().date_naive() - chrono::Duration::days(300);
        let order = pb::PatientOrder { patient_id: "P0001".into(), patient_name: "Readme Example".into(), product_id: "HepB".into(), booth: 1, dose_number: 1, birth_date: born.to_string(), health_check_attested: true, ..Default::default() };
        // The daemon serves while it homes (not taking orders yet): ask until it takes it.
        let ready_by = Instant::now() + Duration::from_secs(120);
        let id = loop {
            match clinic.start_dispense(pb::StartDispenseRequest { request_id: "readme-1".into(), order: Some(order.clone()) }).await {
                Ok(started) => break started.into_inner().dispense_id,
                Err(e) if format!("{:?}", e.code()) == "Unavailable" && Instant::now() < ready_by => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("start: {e:?}"),
            }
        };
        assert_eq!(id, "D000001");
        let mut stream = clinic.watch_dispense(pb::WatchDispenseRequest { dispense_id: id.clone() }).await.expect("watch").into_inner();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
        while let Ok(Ok(Some(update))) = tokio::time::timeout_at(deadline, stream.message()).await {
            let d = update.dispense.expect("dispense");
            match d.stage() {
                pb::DispenseStage::AwaitingValidation => {
                    clinic.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), ..Default::default() }).await.expect("validate");
                }
                pb::DispenseStage::AwaitingAdministration => {
                    let given = pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N1".into(), ..Default::default() };
                    clinic.confirm_administration(given).await.expect("administer");
                }
                pb::DispenseStage::Administered => return,
                stage if d.finished => panic!("the example dose ended {stage:?}: {}", d.detail),
                _ => {}
            }
        }
        panic!("the example dose was not given in time");
    });
}

#[test]
fn the_readme_examples_run_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new("cp").arg("-r").arg(repo().join("config")).arg(dir.path()).status().expect("cp");
    assert!(status.success(), "config copied");
    std::fs::create_dir_all(dir.path().join("var")).expect("var");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut servers: Vec<Background> = Vec::new();
    let mut ran = 0;
    for command in readme_commands() {
        if let Some((_, why)) = ELSEWHERE.iter().find(|(start, _)| command.starts_with(start)) {
            eprintln!("elsewhere: {command}  ({why})");
            continue;
        }
        if command == "./scripts/demo" {
            // The script is its setup (the machine has what it needs: this test
            // runs after it) and this: the main job, run to its summary.
            let out = Command::new(binary("wssim")).args(["demo", "--config", "config/simulated.toml"]).current_dir(dir.path()).output().expect("demo runs");
            let shown = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && shown.contains("Summary"), "the demo ends with its summary: {shown}\n{}", String::from_utf8_lossy(&out.stderr));
            ran += 1;
            continue;
        }
        if let Some(exports) = command.strip_prefix("export ") {
            env.extend(exports.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())));
            continue;
        }
        if command.contains("wssim -- hardware") {
            // Printed addresses, then the devices file the daemon's config names.
            servers.push(background(dir.path(), &forms(&command)[0]));
            until("wssim hardware writes the devices file", Duration::from_secs(60), || dir.path().join("var/wire-devices.toml").exists());
            ran += 1;
            continue;
        }
        if command.contains("workstation -- serve") {
            servers.push(background(dir.path(), &forms(&command)[0]));
            let wsctl = binary("wsctl");
            until("the daemon serves and takes orders", Duration::from_secs(120), || {
                Command::new(&wsctl).args(["--addr", "http://127.0.0.1:50051", "--token", "dev-observer", "status"]).output().is_ok_and(|o| o.status.success())
            });
            one_dose_given();
            ran += 1;
            continue;
        }
        for form in forms(&command) {
            let (codes, why) = expected_codes(&form);
            let out = Command::new("bash").arg("-c").arg(runnable(&form)).current_dir(dir.path()).envs(env.iter().cloned()).output().expect("bash runs");
            let code = out.status.code().unwrap_or(-1);
            assert!(
                codes.contains(&code),
                "README example `{form}` exited {code}, expected {codes:?} ({why})\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    // The live view runs until stopped: it must show the workstation within a deadline.
    let mut watch = Command::new(binary("wsctl")).arg("watch").envs(env.iter().cloned()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("watch starts");
    let mut stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = [0u8; 64];
        let _ = tx.send(std::io::Read::read(&mut stdout, &mut first).unwrap_or(0));
    });
    let shown = rx.recv_timeout(Duration::from_secs(30)).unwrap_or(0);
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(shown > 0, "wsctl watch showed nothing within 30 s");
    let completions = Command::new(binary("wsctl")).args(["completions", "bash"]).output().expect("completions");
    assert!(completions.status.success() && !completions.stdout.is_empty());
    drop(servers);
    eprintln!("README examples run: {ran}");
    assert!(ran >= 30, "only {ran} README examples ran: did the parser lose the blocks?");
}
