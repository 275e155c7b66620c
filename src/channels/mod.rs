//! Messenger channels: inbound webhook parsing and outbound clients.
