//! The kernel-side load balancer: a classic BPF program for `PACKET_FANOUT_CBPF` that sends every
//! packet between two hosts to the same fanout member (worker), in both directions.
//!
//! The kernel's own `PACKET_FANOUT_HASH` hashes the 5-tuple, which splits what one attack does
//! across workers (SMB multichannel: several connections; the endpoint mapper on 135, then the
//! dynamic port it names; IP fragments, which carry no ports). The file pipeline shards by host
//! pair for the same reason (`pipeline::stream::shard_of`); this program is its kernel twin:
//!
//! * IPv4: `h = (src ^ dst) * K`, one 32-bit word;
//! * IPv6: the four words of `src ^ dst` folded in turn (`h = (h ^ wᵢ) * K`);
//! * XOR makes it symmetric, fragments hash like the rest (only addresses are read), and a final
//!   xor-shift spreads the high bits of the product into the low bits the kernel's `% members` uses.
//! * Non-IP frames (ARP, LLDP …) return 0: the first worker. So does a frame cut before the
//!   addresses (the kernel ends a program whose load runs past the packet with 0).
//!
//! Loads are relative to the network header (`SKF_NET_OFF`), not to the frame: at fanout time the
//! kernel has already pulled the link header on receive (not on transmit), and has taken an outer
//! VLAN tag into metadata. The ethertype comes from `skb->protocol` (`SKF_AD_PROTOCOL`). One inner
//! VLAN tag (802.1Q or 802.1ad in the frame after the outer one was stripped) is stepped over.
//!
//! Hand-assembled because nothing else emits it: libpcap compiles filters (accept or drop), not
//! programs that return a value, and an eBPF program would need a loader crate and CAP_BPF.

/// One classic BPF instruction, as `struct sock_filter`.
pub type Insn = libc::sock_filter;

// Instruction classes, sizes, modes and operations (linux/bpf_common.h).
const LD: u16 = 0x00;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const ABS: u16 = 0x20;
const IMM: u16 = 0x00;
const MEM: u16 = 0x60;
const MUL: u16 = 0x20;
const RSH: u16 = 0x70;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const SRC_X: u16 = 0x08;
const RVAL_A: u16 = 0x10;
const TAX: u16 = 0x00;

/// Loads at `NET_OFF + n` read `n` bytes past the network header.
const NET_OFF: u32 = 0xfff0_0000; // SKF_NET_OFF (-0x100000)
/// `skb->protocol` (the ethertype, host order).
const AD_PROTOCOL: u32 = 0xffff_f000; // SKF_AD_OFF + SKF_AD_PROTOCOL
/// Scratch word holding the running hash.
const HASH: u32 = 1;
/// Odd multiplier (2^32 / golden ratio).
const K: u32 = 0x9e37_79b1;

const ETH_IPV4: u32 = 0x0800;
const ETH_IPV6: u32 = 0x86dd;
const ETH_VLAN: u32 = 0x8100;
const ETH_QINQ: u32 = 0x88a8;

/// A tiny assembler: forward jumps to labels, resolved once the program is complete.
#[derive(Default)]
struct Asm {
    code: Vec<(Insn, Option<(usize, usize)>)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn stmt(&mut self, code: u16, k: u32) {
        self.code.push((
            Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            None,
        ));
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    /// `if A == k goto t else goto f`.
    fn jeq(&mut self, k: u32, t: usize, f: usize) {
        self.code.push((
            Insn {
                code: JMP | JEQ,
                jt: 0,
                jf: 0,
                k,
            },
            Some((t, f)),
        ));
    }
    fn jump(&mut self, to: usize) {
        self.code.push((
            Insn {
                code: JMP | JA,
                jt: 0,
                jf: 0,
                k: 0,
            },
            Some((to, to)),
        ));
    }
    fn finish(self) -> Vec<Insn> {
        let labels = self.labels;
        self.code
            .into_iter()
            .enumerate()
            .map(|(at, (mut insn, jump))| {
                if let Some((t, f)) = jump {
                    let rel = |l: usize| {
                        let to = labels[l].expect("label placed");
                        to.checked_sub(at + 1).expect("forward jump")
                    };
                    if insn.code == JMP | JA {
                        insn.k = rel(t) as u32;
                    } else {
                        insn.jt = u8::try_from(rel(t)).expect("short jump");
                        insn.jf = u8::try_from(rel(f)).expect("short jump");
                    }
                }
                insn
            })
            .collect()
    }

    /// `hash = (hash ^ (word at src ^ word at dst)) * K`.
    fn fold_pair(&mut self, src: u32, dst: u32) {
        self.stmt(LD | W | ABS, NET_OFF + src);
        self.stmt(MISC | TAX, 0);
        self.stmt(LD | W | ABS, NET_OFF + dst);
        self.stmt(ALU | XOR | SRC_X, 0);
        self.stmt(MISC | TAX, 0);
        self.stmt(LD | MEM, HASH);
        self.stmt(ALU | XOR | SRC_X, 0);
        self.stmt(ALU | MUL, K);
        self.stmt(ST, HASH);
    }

    /// IPv4 or IPv6 at `base` bytes past the network header, else return 0.
    fn ip_at(&mut self, base: u32, mix: usize, other: usize) {
        let (v4, v6, not4) = (self.label(), self.label(), self.label());
        self.jeq(ETH_IPV4, v4, not4);
        self.here(not4);
        self.jeq(ETH_IPV6, v6, other);
        self.here(v4);
        self.fold_pair(base + 12, base + 16);
        self.jump(mix);
        self.here(v6);
        for word in 0..4 {
            self.fold_pair(base + 8 + 4 * word, base + 24 + 4 * word);
        }
        self.jump(mix);
    }
}

/// The fanout program (see the module docs).
pub fn host_pair_program() -> Vec<Insn> {
    let mut a = Asm::default();
    let (tagged, not_vlan, untagged, mix, other) =
        (a.label(), a.label(), a.label(), a.label(), a.label());
    a.stmt(LD | IMM, 0);
    a.stmt(ST, HASH);
    a.stmt(LD | W | ABS, AD_PROTOCOL);
    a.jeq(ETH_VLAN, tagged, not_vlan);
    a.here(not_vlan);
    a.jeq(ETH_QINQ, tagged, untagged);
    a.here(untagged);
    a.ip_at(0, mix, other);
    a.here(tagged);
    // Inner tag: TCI at +0, ethertype at +2, the IP header at +4.
    a.stmt(LD | H | ABS, NET_OFF + 2);
    a.ip_at(4, mix, other);
    a.here(mix);
    a.stmt(LD | MEM, HASH);
    a.stmt(MISC | TAX, 0);
    a.stmt(ALU | RSH, 16);
    a.stmt(ALU | XOR | SRC_X, 0);
    a.stmt(RET | RVAL_A, 0);
    a.here(other);
    a.stmt(RET, 0);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::build::{ether, ipv4, tcp, ACK};

    /// The subset of the classic BPF machine the program uses, with the kernel's meaning of
    /// `SKF_NET_OFF` loads and `SKF_AD_PROTOCOL`; a load past the end returns 0 as the kernel does.
    fn run(prog: &[Insn], protocol: u16, net: &[u8]) -> u32 {
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let load = |k: u32, size: usize| -> Option<u32> {
            if k == AD_PROTOCOL {
                return Some(u32::from(protocol));
            }
            let off = k.checked_sub(NET_OFF)? as usize;
            let b = net.get(off..off + size)?;
            Some(b.iter().fold(0u32, |v, x| (v << 8) | u32::from(*x)))
        };
        let mut pc = 0;
        for _ in 0..prog.len() {
            let i = prog[pc];
            pc += 1;
            match i.code {
                c if c == LD | IMM => a = i.k,
                c if c == LD | W | ABS => match load(i.k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == LD | H | ABS => match load(i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == LD | MEM => a = mem[i.k as usize],
                c if c == ST => mem[i.k as usize] = a,
                c if c == MISC | TAX => x = a,
                c if c == ALU | XOR | SRC_X => a ^= x,
                c if c == ALU | MUL => a = a.wrapping_mul(i.k),
                c if c == ALU | RSH => a >>= i.k,
                c if c == JMP | JA => pc += i.k as usize,
                c if c == JMP | JEQ => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                }
                c if c == RET | RVAL_A => return a,
                c if c == RET => return i.k,
                other => panic!("instruction {other:#x} not in the interpreter"),
            }
        }
        panic!("program ran off its end")
    }

    fn v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        ipv4(src, dst, 6, &tcp(sport, dport, 1, 1, ACK, b"payload"))
    }

    fn v6(src: [u8; 16], dst: [u8; 16], next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn program_is_valid_classic_bpf() {
        let p = host_pair_program();
        assert!(p.len() < 128, "{} instructions", p.len());
        assert_eq!(p.last().map(|i| i.code), Some(RET), "ends in a return");
        // Every jump lands inside the program.
        for (at, i) in p.iter().enumerate() {
            if i.code == JMP | JEQ {
                assert!(at + 1 + usize::from(i.jt.max(i.jf)) < p.len());
            }
            if i.code == JMP | JA {
                assert!(at + 1 + (i.k as usize) < p.len());
            }
        }
    }

    #[test]
    fn both_directions_and_every_port_of_a_host_pair_hash_alike() {
        let p = host_pair_program();
        let (c, s) = ([10, 1, 2, 3], [10, 9, 8, 7]);
        let h = run(&p, 0x0800, &v4(c, s, 50000, 445));
        assert_eq!(run(&p, 0x0800, &v4(s, c, 445, 50000)), h);
        assert_eq!(run(&p, 0x0800, &v4(c, s, 50001, 135)), h, "epm");
        assert_eq!(run(&p, 0x0800, &v4(s, c, 49667, 50002)), h, "dynamic port");
        assert_ne!(run(&p, 0x0800, &v4(c, [10, 9, 8, 6], 50000, 445)), h);
    }

    #[test]
    fn fragments_hash_with_their_datagram() {
        let p = host_pair_program();
        let first = v4([192, 0, 2, 1], [192, 0, 2, 9], 1, 445);
        let mut later = first[..20].to_vec();
        later[6] = 0x00;
        later[7] = 0x10; // offset 128 bytes, no TCP header in this fragment
        later.extend_from_slice(b"middle of the datagram");
        assert_eq!(run(&p, 0x0800, &first), run(&p, 0x0800, &later));
        let a: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let b: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let frag6 = v6(a, b, 44, &[6, 0, 0, 0x11, 0, 0, 0, 7, 1, 2, 3]);
        let tcp6 = v6(b, a, 6, &tcp(445, 50000, 1, 1, ACK, b""));
        assert_eq!(run(&p, 0x86dd, &frag6), run(&p, 0x86dd, &tcp6));
        assert_ne!(run(&p, 0x86dd, &frag6), 0);
    }

    #[test]
    fn inner_vlan_tag_is_stepped_over() {
        let p = host_pair_program();
        let ip = v4([10, 0, 0, 1], [10, 0, 0, 2], 1, 445);
        let mut tagged = vec![0x00, 0x07, 0x08, 0x00];
        tagged.extend_from_slice(&ip);
        assert_eq!(run(&p, 0x8100, &tagged), run(&p, 0x0800, &ip));
        assert_eq!(run(&p, 0x88a8, &tagged), run(&p, 0x0800, &ip));
    }

    #[test]
    fn non_ip_and_cut_frames_go_to_the_first_worker() {
        let p = host_pair_program();
        assert_eq!(run(&p, 0x0806, &[0u8; 28]), 0, "ARP");
        assert_eq!(run(&p, 0x0800, &[0x45, 0, 0, 20, 0, 0]), 0, "cut");
    }

    #[test]
    fn host_pairs_spread_over_workers() {
        let p = host_pair_program();
        for n in [2u32, 3, 4] {
            let mut seen = vec![0u32; n as usize];
            for k in 0..=255u8 {
                let frame = v4([10, 0, 0, k], [10, 0, 1, 10], 50000, 445);
                seen[(run(&p, 0x0800, &frame) % n) as usize] += 1;
            }
            let fair = 256 / n;
            assert!(seen.iter().all(|c| *c > fair / 2), "{n} workers: {seen:?}");
        }
        // The same through the frame builder the pipeline tests use, to keep the offsets honest.
        let f = ether(0x0800, &v4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        assert_eq!(
            run(&p, 0x0800, &f[14..]),
            run(&p, 0x0800, &v4([5, 6, 7, 8], [1, 2, 3, 4], 9, 9))
        );
    }
}
