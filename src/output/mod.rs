//! What the sensor writes: JSON lines (events, alerts, flows), Zeek's log layout, Suricata's EVE
//! form, to files, stdout, syslog or Unix sockets, the human summary on stderr and the HTML report.

pub mod eve;
pub mod formats;
pub mod json;
pub mod logdir;
pub mod report;
pub mod socket;
pub mod stamp;
pub mod summary;
pub mod tsv;
