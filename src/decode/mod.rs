//! Link, VLAN, IP (with fragment reassembly) and TCP headers → a flow key and a payload slice.
