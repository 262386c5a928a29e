//! Whose upload it is. Each upload of a pair belongs to one attack instance and is reported once:
//! the instance whose binary path (or task command) names it, else the nearest create that
//! follows it, else (an upload after every create) the latest one before it. An instance that
//! took an upload only by time gives it up to one that names it, or to a nearer following create,
//! while both are open; a reported alert keeps what it reported.

use super::PairState;
use crate::detect::instance::Instance;
use crate::detect::upload::UploadRec;
use crate::time::Ts;

/// Which instance holds an upload, and whether its binary path names the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub instance: u64,
    pub named: bool,
}

/// How strongly `inst` would own `u`: by name, or by time (a following create, then a
/// preceding one, nearer is stronger). Larger is stronger.
fn claim_strength(inst: &Instance, u: &UploadRec) -> (bool, bool, i128) {
    let named = inst.names_upload(u);
    let follows = inst.create_ts() >= u.ts();
    let distance = (i128::from(inst.create_ts().0) - i128::from(u.ts().0)).abs();
    (named, follows, -distance)
}

impl PairState {
    /// Re-deals the uploads of the window (from `from`) that instance `idx` may take: unowned
    /// ones, and ones an open instance holds on a weaker claim.
    pub(super) fn claim_uploads(&mut self, idx: usize, from: Ts) {
        let Some(id) = self.open.get(idx).map(Instance::id) else {
            return;
        };
        for k in 0..self.uploads.len() {
            let u = &self.uploads[k];
            if u.ts() < from {
                continue;
            }
            let mine = claim_strength(&self.open[idx], u);
            let take = match u.owner() {
                None => true,
                Some(o) if o.instance == id => false,
                Some(o) => match self.open.iter().position(|i| i.id() == o.instance) {
                    // Reported already: it stays where it was reported.
                    None => false,
                    Some(j) => mine > claim_strength(&self.open[j], u),
                },
            };
            if !take {
                continue;
            }
            if let Some(o) = u.owner() {
                let uid = u.id();
                if let Some(prev) = self.open.iter_mut().find(|i| i.id() == o.instance) {
                    prev.give_up_upload(uid);
                }
            }
            if !self.open[idx].has_room_for_upload() {
                continue;
            }
            self.uploads[k].set_owner(Owner {
                instance: id,
                named: mine.0,
            });
            self.open[idx].take_upload(&self.uploads[k]);
        }
    }

    /// An upload was recorded or grew: its owner's copy follows; an unowned one is dealt to the
    /// open instance with the strongest claim.
    pub(super) fn upload_changed(&mut self, k: usize, from: Ts) {
        let Some(u) = self.uploads.get(k).cloned() else {
            return;
        };
        if let Some(o) = u.owner() {
            if let Some(i) = self.open.iter_mut().find(|i| i.id() == o.instance) {
                i.refresh_upload(&u);
            }
            return;
        }
        let best = (0..self.open.len()).max_by_key(|&i| claim_strength(&self.open[i], &u));
        if let Some(i) = best {
            self.claim_uploads(i, from);
        }
    }
}
