//! `workstation token --name N --role R`: a new API token and the config entry that
//! stores only its hash.

use controller::api::auth::layer::{new_token, token_hash};
use controller::api::auth::roles::Role;

pub fn run(name: &str, role: &str) -> anyhow::Result<()> {
    let role: Role = toml::Value::String(role.to_owned())
        .try_into()
        .map_err(|_| anyhow::anyhow!("--role {role:?}: must be clinic, pharmacist, maintenance or observer"))?;
    let token = new_token()?;
    println!("token (give this to {name}; it is not stored anywhere):\n  {token}\n");
    println!("add to the config:\n[[auth.tokens]]\nname = {name:?}\nrole = \"{role}\"\nsha256 = \"{}\"", token_hash(&token));
    Ok(())
}
