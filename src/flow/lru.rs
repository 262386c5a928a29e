//! A slab of entries, each on one of a few recency lists: insert, touch (move to the back of a
//! list, possibly another one), remove and "oldest of a list" all in O(1).
//!
//! The flow table keeps one list per flow class (closed, never carried data, carried data), in
//! the order flows were last seen, as Suricata's flow manager keeps per-state queues and Zeek its
//! connection timers: the next flow to expire or to evict is a list's front, never found by
//! scanning or sorting the table. By hand because the crates at hand (`lru`, `hashlink`) keep one
//! order per map, and the table needs several, with entries moving between them.

const NIL: u32 = u32::MAX;

struct Node<T> {
    value: Option<T>,
    prev: u32,
    next: u32,
    list: u8,
}

#[derive(Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    len: usize,
}

/// A slab of `T` on `N` recency lists. Slot ids are stable while the entry lives.
pub struct Lists<T, const N: usize> {
    nodes: Vec<Node<T>>,
    free: Vec<u32>,
    lists: [Ends; N],
}

impl<T, const N: usize> Default for Lists<T, N> {
    fn default() -> Self {
        Lists {
            nodes: Vec::new(),
            free: Vec::new(),
            lists: [Ends {
                head: NIL,
                tail: NIL,
                len: 0,
            }; N],
        }
    }
}

impl<T, const N: usize> Lists<T, N> {
    /// Entries on every list.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lists.iter().map(|l| l.len).sum()
    }

    /// Entries on list `list`.
    #[cfg(test)]
    pub fn list_len(&self, list: usize) -> usize {
        self.lists[list].len
    }

    /// Store `value` at the back of `list`; returns its slot id.
    pub fn insert(&mut self, list: usize, value: T) -> u32 {
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize].value = Some(value);
                id
            }
            None => {
                self.nodes.push(Node {
                    value: Some(value),
                    prev: NIL,
                    next: NIL,
                    list: 0,
                });
                (self.nodes.len() - 1) as u32
            }
        };
        self.link_back(id, list);
        id
    }

    pub fn get(&self, id: u32) -> Option<&T> {
        self.nodes.get(id as usize)?.value.as_ref()
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.nodes.get_mut(id as usize)?.value.as_mut()
    }

    /// Move entry `id` to the back of `list` (its own or another).
    #[inline(always)]
    pub fn touch(&mut self, id: u32, list: usize) {
        if self.lists.get(list).is_some_and(|l| l.tail == id)
            && self
                .nodes
                .get(id as usize)
                .is_some_and(|n| usize::from(n.list) == list)
        {
            // Already there (the common case: consecutive segments of one flow). Unlinking and
            // linking back would change nothing but write to two other entries' nodes, each a
            // likely cache miss in a large table. Checked inline: the call cost more than this.
            return;
        }
        self.move_to_back(id, list);
    }

    #[inline(never)]
    fn move_to_back(&mut self, id: u32, list: usize) {
        let Some(node) = self.nodes.get(id as usize) else {
            return;
        };
        if node.value.is_none() {
            return;
        }
        self.unlink(id);
        self.link_back(id, list);
    }

    /// Take entry `id` out; its slot is reused.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let value = self.nodes.get_mut(id as usize)?.value.take()?;
        self.unlink(id);
        self.free.push(id);
        Some(value)
    }

    /// The oldest entry of `list` (the least recently touched).
    pub fn front(&self, list: usize) -> Option<u32> {
        let h = self.lists[list].head;
        (h != NIL).then_some(h)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i as u32, n.value.as_ref()?)))
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next, list) = {
            let n = &self.nodes[id as usize];
            (n.prev, n.next, n.list as usize)
        };
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.lists[list].len -= 1;
    }

    fn link_back(&mut self, id: u32, list: usize) {
        let tail = self.lists[list].tail;
        {
            let n = &mut self.nodes[id as usize];
            n.prev = tail;
            n.next = NIL;
            n.list = list as u8;
        }
        if tail == NIL {
            self.lists[list].head = id;
        } else {
            self.nodes[tail as usize].next = id;
        }
        self.lists[list].tail = id;
        self.lists[list].len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(l: &Lists<u32, 2>, list: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = l.lists[list].head;
        while cur != NIL {
            out.push(*l.get(cur).unwrap());
            cur = l.nodes[cur as usize].next;
        }
        out
    }

    #[test]
    fn touch_moves_to_the_back_and_across_lists() {
        let mut l: Lists<u32, 2> = Lists::default();
        let ids: Vec<u32> = (0..5).map(|v| l.insert(0, v)).collect();
        assert_eq!(order(&l, 0), vec![0, 1, 2, 3, 4]);
        l.touch(ids[1], 0);
        assert_eq!(order(&l, 0), vec![0, 2, 3, 4, 1]);
        l.touch(ids[0], 1);
        l.touch(ids[4], 1);
        assert_eq!(order(&l, 0), vec![2, 3, 1]);
        assert_eq!(order(&l, 1), vec![0, 4]);
        assert_eq!(l.front(1).and_then(|i| l.get(i)), Some(&0));
        // Touching the back of its own list changes nothing.
        l.touch(ids[4], 1);
        assert_eq!(order(&l, 1), vec![0, 4]);
        l.touch(ids[1], 0);
        assert_eq!(order(&l, 0), vec![2, 3, 1]);
        assert_eq!((l.len(), l.list_len(0), l.list_len(1)), (5, 3, 2));
        assert_eq!(l.remove(ids[3]), Some(3));
        assert_eq!(l.remove(ids[3]), None);
        assert_eq!(order(&l, 0), vec![2, 1]);
        // The freed slot is reused.
        assert_eq!(l.insert(1, 9), ids[3]);
        assert_eq!(order(&l, 1), vec![0, 4, 9]);
        for (i, id) in ids.into_iter().enumerate() {
            if i != 3 {
                l.remove(id);
            }
        }
        assert_eq!(order(&l, 1), vec![9]);
        assert_eq!(l.len(), 1);
        l.touch(99, 0);
        assert_eq!(l.len(), 1);
    }
}
