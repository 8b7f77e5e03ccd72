//! The integration tests, one binary: each module is one subject, against the real daemon or
//! the real binary, with the servers it needs started on loopback (`support`). One binary
//! instead of one per file: each would link the whole stack again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod binary;
mod browser;
mod check;
mod config;
mod daemon;
mod diagnosis;
mod dmarc;
mod dmarc_imap;
mod dmarc_s3;
mod dmarc_s3_moto;
mod docs;
mod domain_dns;
mod encrypted;
mod faults;
mod http;
mod keys;
mod page;
mod presets;
mod probe;
mod reload;
mod render;
mod ses;
mod ses_moto;
mod shard;
mod transport;
mod versions;
mod web;
