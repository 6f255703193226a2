//! The built `wsctl` binary against a real workstation server on the wire-level
//! simulator (Modbus RTU on a pseudo-terminal, Modbus TCP, the MJPEG camera): every
//! command's output and exit code, the refusals (wrong role, not in maintenance
//! mode, interlock open), and the JSON output parsed back.

use assert_cmd::Command;
use controller::config::Config;
use controller::api::server::serve;
use controller::assemble::assemble;
use serde_json::Value;
use simulator::injection::Fault;
use simulator::wire::{Exposure, HardwarePlan, HardwareSim};
use simulator::{SimConfig, SimWorkstation};
use std::path::Path;
use std::process::Output;

const MAINTENANCE: &str = "crew-token";
const OBSERVER: &str = "wall-token";
const CLINIC: &str = "desk-token";

const STOCK: &str = "[[batch]]\ngtin = \"06901234000016\"\nlot = \"EARLY\"\nexpiry = \"2027-03-31\"\nserial_prefix = \"HE\"\ncount = 3\nfirst_slot = \"R0-0-0\"\n";

struct Station {
    address: String,
    hardware: HardwareSim,
    dir: tempfile::TempDir,
}

/// Simulated hardware on the wire and a workstation serving on loopback.
async fn station() -> Station {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("config/catalog.toml"), dir.path().join("catalog.toml")).expect("catalog");
    std::fs::write(dir.path().join("stock.toml"), STOCK).expect("stock");
    let units = hal::manifest::parse(STOCK).expect("manifest");
    let sim = SimWorkstation::new(SimConfig { speed: 40.0, booths: 4, ..SimConfig::default() }, &units);
    let plan = HardwarePlan { store: Exposure::Rtu { baud: 115_200 }, conveyor: Exposure::Tcp { bind: "127.0.0.1:0".parse().expect("addr") }, http: "127.0.0.1:0".parse().expect("addr") };
    let hardware = HardwareSim::start(sim, &plan).await.expect("hardware");
    std::fs::write(dir.path().join("devices.toml"), hardware.wire_config_toml()).expect("devices");
    let tokens: String = [("crew-1", "maintenance", MAINTENANCE), ("wall-screen", "observer", OBSERVER), ("front-desk", "clinic", CLINIC)]
        .iter()
        .map(|(name, role, token)| format!("[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n", controller::api::auth::layer::token_hash(token)))
        .collect();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n\
         [coldchain]\nsample_s = 0.2\n[hardware]\nkind = \"wire\"\ndevices = \"devices.toml\"\n{tokens}"
    );
    std::fs::write(dir.path().join("ws.toml"), config).expect("config");
    let config = Config::load(&dir.path().join("ws.toml")).expect("config loads");
    let assembled = assemble(config).await.expect("assembles");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let (dispatcher, config) = (assembled.dispatcher.clone(), assembled.config.clone());
    tokio::spawn(async move { serve(dispatcher, &config, listener, std::future::pending()).await });
    Station { address, hardware, dir }
}

/// Runs the built wsctl with a token; its output and exit code.
async fn wsctl(station: &Station, token: &str, args: &[&str]) -> Output {
    let mut command = Command::cargo_bin("wsctl").expect("wsctl is built");
    command.env("WSCTL_ADDR", &station.address).env("WSCTL_TOKEN", token).env("HOME", station.dir.path()).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("wsctl runs")).await.expect("joined")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_maintenance_motions_and_selftest_with_their_refusals() {
    let s = station().await;

    let out = wsctl(&s, OBSERVER, &["status"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for expected in ["READY", "cold store", "conveyor", "SIM-CS-0001", "rtu:", "tcp:", "faults        none active"] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    let status = json(&wsctl(&s, OBSERVER, &["status", "--json"]).await);
    assert_eq!(status["state"], "ready");
    assert_eq!(status["devices"].as_array().expect("devices").len(), 2);
    assert!(status["devices"].as_array().expect("devices").iter().all(|d| d["alive"] == true && !d["firmware"].as_str().unwrap_or("").is_empty()));
    assert_eq!(code(&wsctl(&s, "wrong-token", &["status"]).await), 3, "unknown token: refused");

    // Motions need maintenance mode, the maintenance role and closed interlocks.
    let out = wsctl(&s, MAINTENANCE, &["jog", "belt", "20"]).await;
    assert_eq!(code(&out), 4, "not in maintenance: {}", stderr(&out));
    assert!(stderr(&out).contains("maintenance"), "{}", stderr(&out));
    assert_eq!(code(&wsctl(&s, CLINIC, &["jog", "belt", "20"]).await), 3, "a clinic token cannot jog");
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["selftest"]).await), 4);
    let out = wsctl(&s, MAINTENANCE, &["maintenance", "enter", "--reason", "monthly check", "--timeout", "10m", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["holder"], "crew-1");
    let jogs = s.hardware.workstation().jogs();
    let out = wsctl(&s, MAINTENANCE, &["jog", "belt", "-20"]).await;
    assert_eq!((code(&out), stdout(&out).trim()), (0, "jogged belt -20 mm"), "{}", stderr(&out));
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["jog", "x", "15"]).await), 0);
    assert_eq!(s.hardware.workstation().jogs(), jogs + 2);
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["jog", "belt", "900"]).await), 5, "beyond the limit");
    s.hardware.inject(&Fault::Door(true)).expect("door");
    let out = wsctl(&s, MAINTENANCE, &["home"]).await;
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("restock door open"), "{}", stderr(&out));
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["jog", "belt", "20"]).await), 4, "never with an interlock open");
    assert_eq!(s.hardware.workstation().jogs(), jogs + 2, "nothing moved");
    s.hardware.inject(&Fault::Door(false)).expect("door");
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["home"]).await), 0);

    let out = wsctl(&s, MAINTENANCE, &["selftest"]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("0 of 13 checks failed"), "{}", stdout(&out));
    s.hardware.inject(&Fault::ProbeOffset(3.0)).expect("probe offset");
    let out = wsctl(&s, MAINTENANCE, &["selftest", "--json"]).await;
    assert_eq!(code(&out), 1, "a failed check exits 1");
    let report = json(&out);
    assert_eq!(report["passed"], false);
    let agree = report["steps"].as_array().expect("steps").iter().find(|st| st["name"] == "cabinet probes agree").expect("step").clone();
    assert_eq!(agree["result"], "fail");
    s.hardware.inject(&Fault::ProbeOffset(0.0)).expect("probe offset");

    let out = wsctl(&s, MAINTENANCE, &["maintenance", "exit"]).await;
    assert_eq!((code(&out), stdout(&out).trim()), (0, "back in service: ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_sensors_registers_camera_stock_trace_logs_and_watch() {
    let s = station().await;

    s.hardware.inject(&Fault::Estop(true)).expect("estop");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    s.hardware.inject(&Fault::Estop(false)).expect("estop");
    let mut active = Value::Null;
    for _ in 0..100 {
        active = json(&wsctl(&s, OBSERVER, &["faults", "--json"]).await)["active"].clone();
        let ids: Vec<&str> = active.as_array().expect("list").iter().filter_map(|f| f["id"].as_str()).collect();
        if ids.contains(&"CV-01@conveyor") && !ids.contains(&"WS-INTERLOCK@interlocks") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let latched = active.as_array().expect("list").iter().find(|f| f["id"] == "CV-01@conveyor").unwrap_or_else(|| panic!("{active}")).clone();
    assert!(!latched["cause"].as_str().unwrap_or("").is_empty() && !latched["remedy"].as_str().unwrap_or("").is_empty());
    let human = stdout(&wsctl(&s, OBSERVER, &["faults"]).await);
    assert!(human.contains("CV-01@conveyor") && human.contains("remedy:"), "{human}");
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["clear", "CV-01@conveyor"]).await), 2, "a reason is required");
    assert_eq!(code(&wsctl(&s, OBSERVER, &["clear", "CV-01@conveyor", "--reason", "x"]).await), 3, "clearing needs the maintenance role");
    // A device's latch is reset only in maintenance mode, under the crew's own lease (H-09).
    let in_service = wsctl(&s, MAINTENANCE, &["clear", "CV-01@conveyor", "--reason", "e-stop released, belt checked"]).await;
    assert_eq!(code(&in_service), 4, "{}", stderr(&in_service));
    assert!(stderr(&in_service).contains("maintenance"), "{}", stderr(&in_service));
    let entered = wsctl(&s, MAINTENANCE, &["maintenance", "enter", "--reason", "reset the belt alarm"]).await;
    assert_eq!(code(&entered), 0, "{}", stderr(&entered));
    let out = wsctl(&s, MAINTENANCE, &["clear", "CV-01@conveyor", "--reason", "e-stop released, belt checked"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["clear", "CV-01@conveyor", "--reason", "again"]).await), 5, "no longer active");
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["maintenance", "exit"]).await), 0);
    let past = json(&wsctl(&s, OBSERVER, &["faults", "--past", "--json"]).await)["past"].clone();
    assert!(past.as_array().expect("past").iter().any(|f| f["id"] == "CV-01@conveyor" && f["cleared_by"] == "crew-1"), "{past}");

    let sensors = json(&wsctl(&s, OBSERVER, &["sensors", "--json"]).await);
    assert_eq!(sensors["interlocks"]["restock_door_open"], false);
    assert_eq!(sensors["probes"].as_array().expect("probes").len(), 3, "{sensors}");
    let temps = wsctl(&s, OBSERVER, &["temps", "--since", "10m", "--width", "20"]).await;
    assert_eq!(code(&temps), 0);
    assert!(stdout(&temps).contains("alarm above 8.0") && stdout(&temps).contains('#'), "{}", stdout(&temps));
    assert_eq!(code(&wsctl(&s, OBSERVER, &["temps", "--since", "soon"]).await), 2, "a bad span is a usage error");

    let regs = json(&wsctl(&s, MAINTENANCE, &["registers", "store", "0", "2", "--json"]).await);
    assert_eq!(regs["values"], serde_json::json!([1, 1]), "device type cold store, map version 1");
    assert!(stdout(&wsctl(&s, MAINTENANCE, &["registers", "conveyor", "0", "1", "--holding"]).await).contains("HR 0"));
    let out = wsctl(&s, MAINTENANCE, &["registers", "toaster", "0"]).await;
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).contains("cold store"), "names the devices there are: {}", stderr(&out));

    let png = s.dir.path().join("scan.png");
    let out = wsctl(&s, MAINTENANCE, &["camera", "snapshot", png.to_str().expect("path")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read(&png).expect("written").starts_with(b"\x89PNG"));

    let stock = json(&wsctl(&s, OBSERVER, &["stock", "--json"]).await);
    assert_eq!(stock["in_store"], 3);
    assert_eq!(stock["lots"][0]["lot"], "EARLY");
    let code_text = "(01)06901234000016(17)270331(10)EARLY(21)HE0001";
    let trace = json(&wsctl(&s, MAINTENANCE, &["trace", code_text, "--json"]).await);
    assert_eq!(trace["state"], "in_store");
    // The vial monitor has been charged since the workstation started (fridge
    // temperature: a sliver of the budget, never nothing, never all).
    let heat = trace["heat_budget_used"].as_f64().expect("the vial monitor is shown");
    assert!(heat > 0.0 && heat < 0.01, "{heat}");
    assert!(stock["lots"][0]["heat_budget_used_max"].as_f64().is_some(), "{stock}");
    assert_eq!(code(&wsctl(&s, MAINTENANCE, &["trace", "(01)06901234000016(17)270331(10)X(21)NONE"]).await), 5, "unknown unit");

    let file = s.dir.path().join("service-desk.txt");
    let out = wsctl(&s, MAINTENANCE, &["logs", "export", file.to_str().expect("path"), "--since", "1h"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let export = std::fs::read_to_string(&file).expect("written");
    assert!(export.contains("===== journal.csv") && export.contains("CV-01@conveyor") && export.contains("===== controller.log"), "{export}");

    let watch = wsctl(&s, OBSERVER, &["watch", "--count", "2"]).await;
    assert_eq!(code(&watch), 0);
    let lines = stdout(&watch);
    assert!(lines.contains("state=ready") && lines.contains("booth 1: free"), "plain lines when not a terminal: {lines}");

    assert_eq!(code(&wsctl(&s, CLINIC, &["dispense", "D999999"]).await), 5);
    let completions = wsctl(&s, OBSERVER, &["completions", "bash"]).await;
    assert!(stdout(&completions).contains("wsctl"));
    let mut unreachable = Command::cargo_bin("wsctl").expect("built");
    unreachable.env("WSCTL_ADDR", "http://127.0.0.1:9").env("WSCTL_TOKEN", OBSERVER).env("HOME", s.dir.path()).arg("status");
    let out = tokio::task::spawn_blocking(move || unreachable.output().expect("runs")).await.expect("joined");
    assert_eq!(code(&out), 6, "nobody there: {}", stderr(&out));
}

#[test]
fn settings_come_from_a_config_file_when_flags_and_variables_are_silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("wsctl.toml");
    std::fs::write(&config, "addr = \"http://127.0.0.1:9\"\ntoken = \"x\"\n").expect("config");
    let run = |config: &Path| Command::cargo_bin("wsctl").expect("built").env_remove("WSCTL_ADDR").env_remove("WSCTL_TOKEN").env("WSCTL_CONFIG", config).arg("status").output().expect("runs");
    let out = run(&config);
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:9"), "the file's address was used");
    std::fs::write(&config, "adress = \"typo\"\n").expect("config");
    let out = run(&config);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("adress"), "the mistake is named");
}

#[test]
fn the_config_file_is_found_under_xdg_config_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("xdg/wsctl")).expect("folder");
    std::fs::write(dir.path().join("xdg/wsctl/config.toml"), "addr = \"http://127.0.0.1:9\"\ntoken = \"x\"\n").expect("config");
    let out = Command::cargo_bin("wsctl")
        .expect("built")
        .env_remove("WSCTL_ADDR")
        .env_remove("WSCTL_TOKEN")
        .env_remove("WSCTL_CONFIG")
        .env("HOME", dir.path().join("elsewhere"))
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:9"), "the XDG config's address was used: {}", String::from_utf8_lossy(&out.stderr));
}

/// A host that takes the connection but never answers: wsctl gives up when its
/// timeout says, naming the host, instead of hanging.
#[test]
fn a_workstation_that_never_answers_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("http://{}", silent.local_addr().expect("addr"));
    let started = std::time::Instant::now();
    let out = Command::cargo_bin("wsctl")
        .expect("built")
        .env_remove("WSCTL_CONFIG")
        .args(["--addr", &address, "--token", "x", "--connect-timeout", "1s", "--timeout", "2s", "status"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("runs");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(6), "unreachable: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&address[7..]), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < std::time::Duration::from_secs(30), "gave up after {took:?}");
    drop(silent);
}

/// `wsctl fleet status`: every workstation of the targets file asked at once; the
/// one that never answers is shown unreachable (within the timeouts), the other
/// with its state, queue, cabinet temperature and links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_status_shows_every_workstation_and_the_unreachable_ones() {
    let station = station().await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let targets = station.dir.path().join("fleet.toml");
    std::fs::write(
        &targets,
        format!(
            "[[workstation]]\nname = \"futian-01\"\naddr = \"{}\"\ntoken = \"{OBSERVER}\"\n\n[[workstation]]\nname = \"nanshan-07\"\naddr = \"http://{}\"\ntoken = \"x\"\n",
            station.address,
            silent.local_addr().expect("addr")
        ),
    )
    .expect("targets");
    let run = |json: bool| {
        let mut command = Command::cargo_bin("wsctl").expect("built");
        command.env_remove("WSCTL_ADDR").env_remove("WSCTL_TOKEN").env_remove("WSCTL_CONFIG").args(["--connect-timeout", "1s", "--timeout", "2s"]);
        if json {
            command.arg("--json");
        }
        command.args(["fleet", "status", "--targets"]).arg(&targets).timeout(std::time::Duration::from_secs(60)).output().expect("runs")
    };
    // The cold chain's first sample comes within its period (0.2 s here): wait for it.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let table = loop {
        let out = tokio::task::block_in_place(|| run(false));
        let table = stdout(&out);
        if table.contains("°C") || std::time::Instant::now() > until {
            assert_eq!(code(&out), 6, "one of two unreachable: {table}{}", stderr(&out));
            break table;
        }
    };
    let futian = table.lines().find(|l| l.starts_with("futian-01")).expect("a row per workstation");
    assert!(futian.contains("ready") && futian.contains("°C") && futian.contains("2/2"), "{table}");
    let nanshan = table.lines().find(|l| l.starts_with("nanshan-07")).expect("the silent one too");
    assert!(nanshan.contains("UNREACHABLE"), "{table}");
    assert!(table.lines().next().is_some_and(|h| h.contains("FEED")), "{table}");
    let out = tokio::task::block_in_place(|| run(true));
    let parsed = json(&out);
    let rows = parsed["workstations"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["reachable"].as_bool(), rows[1]["reachable"].as_bool()), (Some(true), Some(false)));
    assert_eq!(rows[0]["links"], 2);
    assert_eq!(rows[0]["feed"], "-", "no event feed configured");
    drop(silent);
}
