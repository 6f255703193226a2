//! The contract does not break what integrators built on the last released one:
//! `buf breaking` (FILE rules, proto/buf.yaml) against the image of the released
//! contract kept in `proto/released/` (a release refreshes it: see proto/README.md).

use std::path::Path;
use std::process::Command;

#[test]
fn the_contract_keeps_the_last_release_whole() {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR"));
    let buf = proto.join("../tools/node_modules/.bin/buf");
    assert!(buf.exists(), "buf is not installed at {}: run scripts/setup.sh (npm install --prefix tools)", buf.display());
    let released = proto.join("released/dispense-v1.binpb");
    assert!(released.exists(), "no released contract at {}", released.display());
    let out = Command::new(&buf).args(["breaking", "--against"]).arg(&released).current_dir(proto).output().expect("buf runs");
    assert!(
        out.status.success(),
        "buf breaking: the contract breaks the release in {}:\n{}{}",
        released.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
