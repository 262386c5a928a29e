//! One file written to an admin share (or, where the tree connect was missed, a PE written to an
//! unknown share), summed over the handles that wrote it, and what names it.

use super::names::{basename_lower, executable_part, share_relative, upload_relative};
use super::pair::Owner;
use crate::event::alert::{Evidence, Upload};
use crate::event::Share;
use crate::time::Ts;

#[derive(Clone, Debug)]
pub(super) struct UploadRec {
    /// Unique in its pair: the same name written again later is another upload.
    id: u64,
    ts: Ts,
    share: Share,
    name: String,
    /// Share-relative, lowercase (`names::upload_relative`): what a binary path is compared with.
    rel: String,
    size: u64,
    sha256: Option<String>,
    pe: bool,
    /// The instance it belongs to (`uploads`); none yet: a signal if none ever takes it.
    owner: Option<Owner>,
    ev: Evidence,
}

/// One FILE_WRITE summary as detection takes it: what a handle left on disk.
pub(super) struct Written<'a> {
    pub(super) ts: Ts,
    pub(super) share: Share,
    pub(super) name: &'a str,
    pub(super) bytes: u64,
    pub(super) pe: bool,
    pub(super) sha256: Option<&'a str>,
    pub(super) ev: Evidence,
}

impl UploadRec {
    pub(super) fn new(id: u64, w: Written<'_>) -> UploadRec {
        UploadRec {
            id,
            ts: w.ts,
            rel: relative(&w.share, w.name),
            share: w.share,
            name: w.name.to_string(),
            size: w.bytes,
            sha256: w.sha256.map(str::to_string),
            pe: w.pe,
            owner: None,
            ev: w.ev,
        }
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// When its first write was made.
    pub(super) fn ts(&self) -> Ts {
        self.ts
    }

    pub(super) fn owner(&self) -> Option<Owner> {
        self.owner
    }

    pub(super) fn set_owner(&mut self, owner: Owner) {
        self.owner = Some(owner);
    }

    pub(super) fn evidence(&self) -> &Evidence {
        &self.ev
    }

    pub(super) fn pe(&self) -> bool {
        self.pe
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Whether `w` writes the same file: the same share-relative name (`C$\Windows\x` is
    /// `ADMIN$\x`).
    pub(super) fn same_file(&self, w: &Written<'_>) -> bool {
        self.rel == relative(&w.share, w.name)
    }

    /// More bytes written to it through another handle.
    pub(super) fn grow(&mut self, w: &Written<'_>) {
        self.size = self.size.saturating_add(w.bytes);
        self.pe |= w.pe;
        if let Some(h) = w.sha256 {
            self.sha256 = Some(h.to_string());
        }
    }

    /// Whether a service binary path (or task command) names this file: the same share-relative
    /// path, or, where the share is unknown, the same file name.
    pub(super) fn named_by(&self, binary_path: &str) -> bool {
        match self.share {
            Share::Known(_) => share_relative(binary_path).is_some_and(|r| r == self.rel),
            Share::Unknown => {
                basename_lower(executable_part(binary_path)) == basename_lower(&self.name)
            }
        }
    }

    /// As an alert reports it.
    pub(super) fn to_upload(&self, referenced: bool) -> Upload {
        Upload {
            share: self.share.to_string(),
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            pe: self.pe,
            referenced,
        }
    }
}

/// Share-relative name; an unknown share gives `\name`, which no known share's path equals.
fn relative(share: &Share, name: &str) -> String {
    upload_relative(share.name().unwrap_or(""), name)
}
