pub mod smb_streams;
