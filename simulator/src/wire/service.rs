//! The tokio-modbus [`Service`] in front of a [`DeviceCore`]: function codes 03, 04,
//! 06 and 16 on the register map; anything else is an illegal function, an address
//! outside the map an illegal data address, and a silent device does not answer.

use super::core::DeviceCore;
use super::line::LineControl;
use std::future::{Ready, ready};
use std::sync::Arc;
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

#[derive(Debug, Clone)]
pub struct ModbusService {
    core: Arc<DeviceCore>,
    line: Arc<LineControl>,
}

impl ModbusService {
    pub fn new(core: Arc<DeviceCore>, line: Arc<LineControl>) -> Self {
        Self { core, line }
    }

    fn answer(&self, request: Request<'_>) -> Result<Response, ExceptionCode> {
        let slice = |regs: Vec<u16>, addr: u16, count: u16| {
            let (start, end) = (usize::from(addr), usize::from(addr) + usize::from(count));
            regs.get(start..end).map(<[u16]>::to_vec).ok_or(ExceptionCode::IllegalDataAddress)
        };
        match request {
            Request::ReadInputRegisters(addr, count) => Ok(Response::ReadInputRegisters(slice(self.core.input_registers(), addr, count)?)),
            Request::ReadHoldingRegisters(addr, count) => Ok(Response::ReadHoldingRegisters(slice(self.core.holding_registers(), addr, count)?)),
            Request::WriteSingleRegister(addr, value) => {
                self.core.write_holding(addr, &[value]).map_err(|_| ExceptionCode::IllegalDataAddress)?;
                Ok(Response::WriteSingleRegister(addr, value))
            }
            Request::WriteMultipleRegisters(addr, values) => {
                self.core.write_holding(addr, &values).map_err(|_| ExceptionCode::IllegalDataAddress)?;
                Ok(Response::WriteMultipleRegisters(addr, values.len() as u16))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}

impl Service for ModbusService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        // Another unit's request on a shared bus, or a device that is off or hung: no answer.
        if req.slave != self.core.unit() || !self.core.answering() || self.line.unplugged() {
            return ready(Ok(None));
        }
        ready(self.answer(req.request).map(Some))
    }
}
