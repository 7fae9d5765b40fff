use sepfit_expr::matrix::LossFormula;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let p: Vec<&str> = line.split('|').collect();
        if p.len() < 3 { continue; }
        let mut f = match LossFormula::new(p[0], p[1], None) { Ok(f) => f, Err(e) => { println!("{}: ERR {e}", p[0]); continue; } };
        let r = if p.len() > 3 && p[3] == "J" { f.jacobian(p[2]) } else { f.gradient(p[2]) };
        match r {
            Ok(g) => println!("{:40} [{}] => {}   ||  {}", p[0], p[2], f.unicode(g), f.ascii(g)),
            Err(e) => println!("{}: ERR {e}", p[0]),
        }
    }
}
