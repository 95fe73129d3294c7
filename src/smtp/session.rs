//! Placeholder, replaced by the submission state machine.
use std::rc::Rc;

use crate::net::Stream;
use crate::server::Ctx;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Submission,
    SubmissionStartTls,
}

pub async fn run(_ctx: Rc<Ctx>, mut s: Stream, _mode: Mode) {
    let _ = s.send(b"421 4.3.2 Service not available yet\r\n").await;
}
