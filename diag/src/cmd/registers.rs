//! `wsctl registers DEVICE ADDR [COUNT] [--holding]`: raw Modbus registers, for the
//! field engineer with `hal/REGISTERS.md` at hand.

use super::Ctx;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;

#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// "store" (the cold store) or "conveyor".
    device: String,
    /// First register address.
    address: u32,
    /// How many (1 to 125).
    #[arg(default_value_t = 1)]
    count: u32,
    /// Holding registers (what the controller writes) instead of input registers.
    #[arg(long)]
    holding: bool,
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let table = if self.holding { pb::RegisterTable::Holding } else { pb::RegisterTable::Input };
        let request = pb::ReadRegistersRequest { device: self.device.clone(), table: table as i32, address: self.address, count: self.count };
        let values = ctx.maintenance().read_registers(request).await?.into_inner().values;
        if ctx.json {
            return show::json(&serde_json::json!({"device": self.device, "table": if self.holding { "holding" } else { "input" }, "address": self.address, "values": values}));
        }
        let kind = if self.holding { "HR" } else { "IR" };
        let rows: Vec<Vec<String>> = values.iter().enumerate().map(|(i, v)| vec![format!("{kind} {}", self.address as usize + i), v.to_string(), format!("0x{v:04x}"), format!("{:016b}", v)]).collect();
        show::table(&["REGISTER", "DEC", "HEX", "BITS"], &rows);
        Ok(())
    }
}
