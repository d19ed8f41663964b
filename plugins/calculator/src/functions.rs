//! The named functions and constants an expression may use.

/// Names callable as `name(...)`.
const FUNCTIONS: &[&str] = &[
    "sqrt", "abs", "sin", "cos", "tan", "ln", "log10", "exp", "floor", "ceil", "round", "min",
    "max", "pow",
];

/// Whether `name` is a function.
pub(crate) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// The value of the constant `name` (`pi`, `e`).
pub(crate) fn constant(name: &str) -> Option<f64> {
    match name {
        "pi" => Some(std::f64::consts::PI),
        "e" => Some(std::f64::consts::E),
        _ => None,
    }
}

/// Calls the function `name`; the error is a message without position.
pub(crate) fn call(name: &str, args: &[f64]) -> Result<f64, String> {
    let one = |f: fn(f64) -> f64| match args {
        [x] => Ok(f(*x)),
        _ => Err(arity(name, "1 argument", args.len())),
    };
    match name {
        "sqrt" => match args {
            [x] if *x < 0.0 => Err("sqrt of a negative number".into()),
            _ => one(f64::sqrt),
        },
        "ln" | "log10" => match args {
            [x] if *x <= 0.0 => Err(format!("{name} of a number that is not positive")),
            _ => one(if name == "ln" { f64::ln } else { f64::log10 }),
        },
        "abs" => one(f64::abs),
        "sin" => one(f64::sin),
        "cos" => one(f64::cos),
        "tan" => one(f64::tan),
        "exp" => one(f64::exp),
        "floor" => one(f64::floor),
        "ceil" => one(f64::ceil),
        "round" => one(f64::round),
        "pow" => match args {
            [base, exponent] => Ok(base.powf(*exponent)),
            _ => Err(arity(name, "2 arguments", args.len())),
        },
        "min" | "max" => {
            if args.len() < 2 {
                return Err(arity(name, "at least 2 arguments", args.len()));
            }
            let pick = if name == "min" { f64::min } else { f64::max };
            Ok(args[1..].iter().fold(args[0], |acc, x| pick(acc, *x)))
        }
        _ if constant(name).is_some() => Err(format!("`{name}` is a constant, not a function")),
        _ => Err(format!("unknown function `{name}`")),
    }
}

fn arity(name: &str, expected: &str, got: usize) -> String {
    format!("{name} takes {expected}, got {got}")
}
