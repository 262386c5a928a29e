fn main() {
    println!("psexec-sensor: under construction");
}
