//! The event feed: what happens at the workstation that the city must know (a
//! dispense's end with its immunization record, stock-in, holds, cold-chain
//! readings and alarms, faults) goes out to an MQTT 5 broker. The journal adds
//! each event to its outbox in the event's own transaction (`journal::outbox`);
//! `publisher` sends the outbox in order, at least once; `message` says what a
//! consumer receives; `settings` is `[events]`; `state` what the publisher is doing.
mod message;
mod publisher;
mod settings;
mod state;

pub use message::{Identity, body};
pub use publisher::{FEED_BACKLOG, Feed, FeedHandle};
pub use state::FeedState;
pub use settings::{Broker, EventsConfig};
