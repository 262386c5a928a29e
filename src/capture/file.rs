//! Capture files: pcap (µs and ns), pcapng (several interfaces, per-interface resolution and offset),
//! gzip-compressed files and directories of captures.
