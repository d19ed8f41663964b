//! Metered operators. minijinja's `+`, `*` and `~` build strings and lists inside its VM, where an embedder
//! cannot see them: `{% set ns.a = ns.a ~ ns.a %}` in a loop doubles a string at every step (forty steps
//! ask for a terabyte, and a failed allocation aborts the process), and constant folding builds
//! `("a" * 99999999) ~ ("a" * 99999999) ~ …` while the template is compiled, that is while a workflow is
//! being uploaded.
//!
//! So every source is rewritten before minijinja compiles it: each such operator becomes a call to one of
//! the functions below (`a ~ b` → `__pipecat_cat(a, b)`), found through minijinja's own parser
//! (`unstable_machinery`, pinned by `Cargo.lock`), and a call is never folded. The functions charge the
//! bytes they build to the render's budget and refuse lists of more than [`MAX_ITEMS`] items, then do
//! exactly what the operator does (minijinja's own operator, evaluated on the checked operands).

use std::borrow::Cow;
use std::sync::LazyLock;

use minijinja::machinery::{Token, ast, parse, tokenize};
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Expression, Value, context};

use super::MAX_ITEMS;
use super::guard::{charge, value_bytes, walk};

/// `source` with every `+`, `*` and `~` replaced by a call to its metered function; borrowed when there is
/// none. A source that does not parse comes back as it is, so minijinja reports the syntax error itself.
pub(super) fn meter(source: &str) -> Result<Cow<'_, str>, String> {
    if let Some(line) = reserved_name_at(source) {
        return Err(format!(
            "syntax error: names starting with `{RESERVED}` are reserved (line {line})"
        ));
    }
    let Ok(root) = parse_template(source) else {
        return Ok(Cow::Borrowed(source));
    };
    let mut edits = Edits {
        source,
        list: Vec::new(),
        parens: None,
    };
    edits.stmt(&root)?;
    let rewritten = edits.apply()?;
    // The rewrite must read as the source did, operators and groupings alike.
    if let Cow::Owned(text) = &rewritten {
        match parse_template(text) {
            Ok(again) if shape(&again) == shape(&root) => {}
            // Each operator of a chain is a call around the ones before it, and minijinja's parser stops
            // at 150 levels of nesting: `a ~ b ~ …` with 149 operators no longer parses.
            Err(e) if e.detail().is_some_and(|d| d.contains("recursion")) => {
                return Err(format!(
                    "syntax error: an expression chains more than {MAX_CHAIN} `~`, `+` or `*` operators \
                     (line {}); build the value in steps with `{{% set %}}`",
                    e.line().unwrap_or(1)
                ));
            }
            _ => {
                return Err(
                    "an operator of this template could not be checked for limits; \
                     try parentheses around its operands"
                        .to_string(),
                );
            }
        }
    }
    Ok(rewritten)
}

fn parse_template(source: &str) -> Result<ast::Stmt<'_>, Error> {
    // minijinja's defaults, as the environment uses them.
    parse(source, "<template>", Default::default(), Default::default())
}

fn shape(root: &ast::Stmt<'_>) -> Vec<String> {
    let mut shape = Shape::default();
    // A shape's visit never fails.
    let _ = shape.stmt(root);
    shape.0
}

/// How many `~`, `+` and `*` one expression may chain (a few levels of minijinja's 150 are left for the
/// expression around the chain).
const MAX_CHAIN: usize = 140;

/// The prefix of the functions the rewrite calls. A template that could name them could also shadow them
/// (`{% set __pipecat_cat = … %}`, a macro of that name), so none may.
const RESERVED: &str = "__pipecat_";

/// The line of the first name in `source` that starts with [`RESERVED`] (text and strings aside).
fn reserved_name_at(source: &str) -> Option<u16> {
    if !source.contains(RESERVED) {
        return None;
    }
    tokenize(source, false, Default::default(), Default::default())
        .map_while(Result::ok)
        .find(|(token, _)| matches!(token, Token::Ident(name) if name.starts_with(RESERVED)))
        .map(|(_, span)| span.start_line)
}

/// Whether no `)` of `expr` closes a parenthesis it did not open: `a) * (b` is not one expression, although
/// `(a) * (b)`, the expression in parentheses, parses.
pub(super) fn closes_only_its_own(expr: &str) -> bool {
    let mut depth = 0usize;
    for token in tokenize(expr, true, Default::default(), Default::default()) {
        match token {
            Ok((Token::ParenOpen, _)) => depth += 1,
            Ok((Token::ParenClose, _)) => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Ok(_) => {}
            // Not an expression at all: compiling it says why.
            Err(_) => return true,
        }
    }
    true
}

/// The functions the rewritten operators call.
pub(super) fn add_operators(env: &mut Environment<'static>) {
    env.add_function(Operator::Add.function(), add);
    env.add_function(Operator::Mul.function(), mul);
    env.add_function(Operator::Concat.function(), concat);
    env.add_function(WALKED.trim_end_matches('('), walked);
}

/// Words of the expression grammar, which no name may be.
const KEYWORDS: [&str; 7] = ["not", "and", "or", "in", "is", "if", "else"];

/// The call an operand that a comparison, a map key or a subscript walks is wrapped in.
const WALKED: &str = "__pipecat_walked(";

#[derive(Clone, Copy)]
enum Operator {
    Add,
    Mul,
    Concat,
}

impl Operator {
    fn of(kind: &ast::BinOpKind) -> Option<Operator> {
        match kind {
            ast::BinOpKind::Add => Some(Operator::Add),
            ast::BinOpKind::Mul => Some(Operator::Mul),
            ast::BinOpKind::Concat => Some(Operator::Concat),
            _ => None,
        }
    }

    fn symbol(self) -> char {
        match self {
            Operator::Add => '+',
            Operator::Mul => '*',
            Operator::Concat => '~',
        }
    }

    /// The opening of the call an operation becomes.
    fn opening(self) -> &'static str {
        match self {
            Operator::Add => "__pipecat_add(",
            Operator::Mul => "__pipecat_mul(",
            Operator::Concat => "__pipecat_cat(",
        }
    }

    fn function(self) -> &'static str {
        self.opening().trim_end_matches('(')
    }
}

/// One change to the source: `text` put at byte `at`, in place of `replaces` bytes.
struct Edit {
    at: usize,
    /// At one offset: closing parentheses first, then the operator's comma, then opening calls (outermost
    /// first, which is the order they were found in).
    rank: u8,
    replaces: usize,
    text: &'static str,
}

struct Edits<'s> {
    source: &'s str,
    list: Vec<Edit>,
    /// The source's parentheses, found when first needed.
    parens: Option<Parens>,
}

/// Each `(` token of a source with the end of its matching `)`, by the offset of the token after it.
#[derive(Default)]
struct Parens {
    /// Offset of a token → (offset of the `(` just before it, end of that `(`'s matching `)`).
    before: std::collections::HashMap<usize, (usize, usize)>,
}

impl Parens {
    fn of(source: &str) -> Parens {
        let mut parens = Parens::default();
        let tokens = tokenize(source, false, Default::default(), Default::default());
        let mut open: Vec<usize> = Vec::new();
        let mut after_open: Vec<(usize, usize)> = Vec::new();
        let mut previous_open: Option<usize> = None;
        for token in tokens {
            let Ok((token, span)) = token else { break };
            let (start, end) = (span.start_offset as usize, span.end_offset as usize);
            if let Some(paren) = previous_open.take() {
                after_open.push((start, paren));
            }
            match token {
                Token::ParenOpen => {
                    open.push(start);
                    previous_open = Some(start);
                }
                Token::ParenClose => {
                    if let Some(paren) = open.pop()
                        && let Some(&(next, _)) = after_open.iter().rev().find(|(_, p)| *p == paren)
                    {
                        parens.before.insert(next, (paren, end));
                    }
                }
                _ => {}
            }
        }
        parens
    }
}

impl<'s> Edits<'s> {
    fn apply(mut self) -> Result<Cow<'s, str>, String> {
        if self.list.is_empty() {
            return Ok(Cow::Borrowed(self.source));
        }
        // Stable: opening calls at one offset stay outermost first.
        self.list.sort_by_key(|edit| (edit.at, edit.rank));
        let mut out = String::with_capacity(self.source.len() + self.list.len() * 8);
        let mut copied = 0;
        for edit in &self.list {
            let text = self.source.get(copied..edit.at).ok_or_else(|| {
                "an operator of this template could not be checked for limits".to_string()
            })?;
            out.push_str(text);
            // `x in-y` would read `in__pipecat_walked(-y)`, one name: a call never joins the word before it.
            if edit.text.starts_with(RESERVED)
                && out.ends_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                out.push(' ');
            }
            out.push_str(edit.text);
            copied = edit.at + edit.replaces;
        }
        out.push_str(&self.source[copied..]);
        Ok(Cow::Owned(out))
    }

    /// `left op right` → `function(left, right)`: the call opens where the operation starts, the operator
    /// becomes a comma and the call closes where the operation ends. The operator is the first character
    /// after the left operand that is neither space nor a closing parenthesis of that operand.
    fn operation(
        &mut self,
        op: &ast::Spanned<ast::BinOp<'_>>,
        operator: Operator,
    ) -> Result<(), String> {
        let (whole, left) = (op.span(), op.left.span());
        let (start, end) = (whole.start_offset as usize, whole.end_offset as usize);
        let after_left = left.end_offset as usize;
        let at = self
            .source
            .get(after_left..end)
            .and_then(|gap| gap.find(|c: char| !c.is_whitespace() && c != ')'))
            .map(|i| after_left + i)
            .filter(|&at| self.source[at..].starts_with(operator.symbol()))
            .ok_or_else(|| {
                format!(
                    "the `{}` at line {} could not be checked for limits",
                    operator.symbol(),
                    whole.start_line
                )
            })?;
        self.list.push(Edit {
            at: start,
            rank: 2,
            replaces: 0,
            text: operator.opening(),
        });
        self.list.push(Edit {
            at,
            rank: 1,
            replaces: 1,
            text: ",",
        });
        self.list.push(Edit {
            at: end,
            rank: 0,
            replaces: 0,
            text: ")",
        });
        Ok(())
    }

    /// `operand` → `__pipecat_walked(operand)`, for a value that one instruction walks whole (a comparison,
    /// a map key, a subscript). Constants and literals of constants are left alone.
    fn wrap(&mut self, operand: &ast::Expr<'_>) {
        if is_constant(operand) {
            return;
        }
        let end = operand.span().end_offset as usize;
        let start = self.outer_start(start(operand), end);
        self.list.push(Edit {
            at: start,
            rank: 2,
            replaces: 0,
            text: WALKED,
        });
        self.list.push(Edit {
            at: end,
            rank: 0,
            replaces: 0,
            text: ")",
        });
    }

    /// `start` moved back over each `(` just before it whose `)` closes by `end`: the operand `(a ~ b)|length`
    /// starts at its parenthesis, while `a` in `f(a == b)` does not take the call's.
    fn outer_start(&mut self, mut start: usize, end: usize) -> usize {
        let parens = self.parens.get_or_insert_with(|| Parens::of(self.source));
        while let Some(&(paren, closes)) = parens.before.get(&start) {
            if closes > end {
                break;
            }
            start = paren;
        }
        start
    }
}

/// A walk over every statement and expression of a template, calling [`Walk::visit`] on each expression
/// before its parts (which it skips when `visit` says so).
trait Walk {
    fn visit(&mut self, expr: &ast::Expr<'_>) -> Result<bool, String>;

    fn stmts(&mut self, stmts: &[ast::Stmt<'_>]) -> Result<(), String> {
        stmts.iter().try_for_each(|stmt| self.stmt(stmt))
    }

    fn stmt(&mut self, stmt: &ast::Stmt<'_>) -> Result<(), String> {
        use ast::Stmt;
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::ForLoop(f) => {
                self.expr(&f.target)?;
                self.expr(&f.iter)?;
                self.opt(f.filter_expr.as_ref())?;
                self.stmts(&f.body)?;
                self.stmts(&f.else_body)
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr)?;
                self.stmts(&i.true_body)?;
                self.stmts(&i.false_body)
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.expr(target)?;
                    self.expr(value)?;
                }
                self.stmts(&w.body)
            }
            Stmt::Set(s) => {
                self.expr(&s.target)?;
                self.expr(&s.expr)
            }
            Stmt::SetBlock(s) => {
                self.expr(&s.target)?;
                self.opt(s.filter.as_ref())?;
                self.stmts(&s.body)
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled)?;
                self.stmts(&a.body)
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter)?;
                self.stmts(&f.body)
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Import(i) => {
                self.expr(&i.expr)?;
                self.expr(&i.name)
            }
            Stmt::FromImport(f) => {
                self.expr(&f.expr)?;
                for (name, alias) in &f.names {
                    self.expr(name)?;
                    self.opt(alias.as_ref())?;
                }
                Ok(())
            }
            Stmt::Macro(m) => self.macro_decl(m),
            Stmt::CallBlock(c) => {
                self.call(&c.call)?;
                self.macro_decl(&c.macro_decl)
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) -> Result<(), String> {
        self.exprs(&m.args)?;
        self.exprs(&m.defaults)?;
        self.stmts(&m.body)
    }

    fn call(&mut self, c: &ast::Call<'_>) -> Result<(), String> {
        self.expr(&c.expr)?;
        self.args(&c.args)
    }

    fn args(&mut self, args: &[ast::CallArg<'_>]) -> Result<(), String> {
        args.iter().try_for_each(|arg| match arg {
            ast::CallArg::Pos(e)
            | ast::CallArg::Kwarg(_, e)
            | ast::CallArg::PosSplat(e)
            | ast::CallArg::KwargSplat(e) => self.expr(e),
        })
    }

    fn exprs(&mut self, exprs: &[ast::Expr<'_>]) -> Result<(), String> {
        exprs.iter().try_for_each(|e| self.expr(e))
    }

    fn opt(&mut self, expr: Option<&ast::Expr<'_>>) -> Result<(), String> {
        expr.map_or(Ok(()), |e| self.expr(e))
    }

    fn expr(&mut self, expr: &ast::Expr<'_>) -> Result<(), String> {
        use ast::Expr;
        if !self.visit(expr)? {
            return Ok(());
        }
        match expr {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::Slice(s) => {
                self.expr(&s.expr)?;
                self.opt(s.start.as_ref())?;
                self.opt(s.stop.as_ref())?;
                self.opt(s.step.as_ref())
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                self.expr(&b.left)?;
                self.expr(&b.right)
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                c.ops.iter().try_for_each(|op| self.expr(&op.expr))
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                self.expr(&i.true_expr)?;
                self.opt(i.false_expr.as_ref())
            }
            Expr::Filter(f) => {
                self.opt(f.expr.as_ref())?;
                self.args(&f.args)
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr)?;
                self.expr(&g.subscript_expr)
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => self.exprs(&l.items),
            Expr::Map(m) => {
                self.exprs(&m.keys)?;
                self.exprs(&m.values)
            }
        }
    }
}

impl Walk for Edits<'_> {
    fn visit(&mut self, expr: &ast::Expr<'_>) -> Result<bool, String> {
        use ast::Expr;
        match expr {
            Expr::BinOp(b) => {
                if let Some(operator) = Operator::of(&b.op) {
                    self.operation(b, operator)?;
                } else if is_comparison(&b.op) {
                    self.wrap(&b.left);
                    self.wrap(&b.right);
                }
            }
            Expr::Compare(c) => {
                self.wrap(&c.expr);
                c.ops.iter().for_each(|op| self.wrap(&op.expr));
            }
            Expr::GetItem(g) => self.wrap(&g.subscript_expr),
            Expr::Map(m) => m.keys.iter().for_each(|key| self.wrap(key)),
            // minijinja reads a trailing `not` (`a == not`) as a name; inside a call it is the operator.
            Expr::Var(v) if KEYWORDS.contains(&v.id) => {
                return Err(format!(
                    "syntax error: `{}` at line {} is a keyword, not a name",
                    v.id,
                    expr.span().start_line
                ));
            }
            // `loop.changed(value)` compares the value with the one of the last iteration.
            Expr::Call(c) => {
                if let Expr::GetAttr(attr) = &c.expr
                    && attr.name == "changed"
                {
                    for arg in &c.args {
                        if let ast::CallArg::Pos(e) = arg {
                            self.wrap(e);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

/// The shape of a template's expressions, read as if the metered calls were the operators they replace
/// and `__pipecat_walked(x)` were `x`: a source and its rewrite must have the same.
#[derive(Default)]
struct Shape(Vec<String>);

impl Walk for Shape {
    fn visit(&mut self, expr: &ast::Expr<'_>) -> Result<bool, String> {
        use ast::Expr;
        let label = match expr {
            Expr::Call(c) => {
                if let Expr::Var(var) = &c.expr
                    && let Some(label) = metered_label(var.id)
                {
                    if !label.is_empty() {
                        self.0.push(label.to_string());
                    }
                    self.args(&c.args)?;
                    return Ok(false);
                }
                format!("call/{}", c.args.len())
            }
            Expr::BinOp(b) => format!("{:?}", b.op),
            Expr::Var(v) => format!("var {}", v.id),
            Expr::Const(c) => format!("const {:?}", c.value),
            Expr::Slice(_) => "slice".to_string(),
            Expr::UnaryOp(u) => format!("{:?}", u.op),
            Expr::Compare(c) => format!("compare/{}", c.ops.len()),
            Expr::IfExpr(_) => "if".to_string(),
            Expr::Filter(f) => format!("filter {}/{}", f.name, f.args.len()),
            Expr::Test(t) => format!("test {}/{}", t.name, t.args.len()),
            Expr::GetAttr(g) => format!("attr {}", g.name),
            Expr::GetItem(_) => "item".to_string(),
            Expr::List(l) => format!("list/{}", l.items.len()),
            Expr::Map(m) => format!("map/{}", m.keys.len()),
        };
        self.0.push(label);
        Ok(true)
    }
}

/// What a metered call stands for in a [`Shape`]: its operator, or nothing for `__pipecat_walked`.
fn metered_label(function: &str) -> Option<&'static str> {
    [Operator::Add, Operator::Mul, Operator::Concat]
        .into_iter()
        .find(|op| op.function() == function)
        .map(|op| match op {
            Operator::Add => "Add",
            Operator::Mul => "Mul",
            Operator::Concat => "Concat",
        })
        .or_else(|| (function == WALKED.trim_end_matches('(')).then_some(""))
}

/// A constant, or a list or map literal of constants: bounded by the source, and folded by minijinja.
fn is_constant(expr: &ast::Expr<'_>) -> bool {
    let constant = |e: &ast::Expr<'_>| matches!(e, ast::Expr::Const(_));
    match expr {
        ast::Expr::Const(_) => true,
        ast::Expr::List(l) => l.items.iter().all(constant),
        ast::Expr::Map(m) => m.keys.iter().chain(&m.values).all(constant),
        _ => false,
    }
}

fn is_comparison(op: &ast::BinOpKind) -> bool {
    use ast::BinOpKind as K;
    matches!(op, K::Eq | K::Ne | K::Lt | K::Lte | K::Gt | K::Gte | K::In)
}

/// Where `expr`'s own text starts (without parentheses around its first part). minijinja's spans start at
/// the first token for names, constants, literals, unary and arithmetic operations, but at the token *before*
/// the expression for comparisons and `if` expressions, and at the name for filters and tests.
fn start(expr: &ast::Expr<'_>) -> usize {
    use ast::Expr;
    let own = expr.span().start_offset as usize;
    match expr {
        Expr::Var(_) | Expr::Const(_) | Expr::List(_) | Expr::Map(_) => own,
        Expr::BinOp(b) if is_comparison(&b.op) => start(&b.left),
        Expr::BinOp(_) => own,
        // `a not in b` is `not (a in b)` with the comparison's span; `a is not t` is `not (a is t)` with
        // the test's, which starts at its name.
        Expr::UnaryOp(u) => match &u.expr {
            Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::In) && b.span() == u.span() => {
                start(&u.expr)
            }
            _ => own.min(start(&u.expr)),
        },
        Expr::Compare(c) => start(&c.expr),
        Expr::IfExpr(i) => start(&i.true_expr),
        Expr::Filter(f) => f.expr.as_ref().map_or(own, |e| own.min(start(e))),
        Expr::Test(t) => own.min(start(&t.expr)),
        Expr::GetAttr(g) => own.min(start(&g.expr)),
        Expr::GetItem(g) => own.min(start(&g.expr)),
        Expr::Slice(s) => own.min(start(&s.expr)),
        Expr::Call(c) => own.min(start(&c.expr)),
    }
}

/// An operand that a comparison, a map key or a subscript walks: charged, then passed on unchanged.
fn walked(value: Value) -> Result<Value, Error> {
    walk(&value)?;
    Ok(value)
}

/// minijinja's own operators, run on operands that have been checked.
struct Native {
    add: Expression<'static, 'static>,
    mul: Expression<'static, 'static>,
}

static NATIVE_ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::empty);
static NATIVE: LazyLock<Native> = LazyLock::new(|| Native {
    add: NATIVE_ENV
        .compile_expression("a + b")
        .expect("`a + b` compiles"),
    mul: NATIVE_ENV
        .compile_expression("a * b")
        .expect("`a * b` compiles"),
});

/// Two integers that fit an `i64`: the common case, done here (minijinja's own `a + b` costs about a
/// microsecond through an expression); anything else, an overflow included, goes to minijinja.
fn small_ints(a: &Value, b: &Value) -> Option<(i64, i64)> {
    if a.is_integer() && b.is_integer() {
        Some((a.as_i64()?, b.as_i64()?))
    } else {
        None
    }
}

fn native(expression: &Expression<'static, 'static>, a: Value, b: Value) -> Result<Value, Error> {
    // A fresh error without the line of `a + b`, so that the template's own line is attached to it.
    expression
        .eval(context! { a, b })
        .map_err(|e| Error::new(e.kind(), e.detail().unwrap_or_default().to_string()))
}

fn too_many_items() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("a value of more than {MAX_ITEMS} items"),
    )
}

fn is_sequence(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// `a ~ b`: both as text.
fn concat(a: Value, b: Value) -> Result<Value, Error> {
    charge(value_bytes(&a)?.saturating_add(value_bytes(&b)?))?;
    Ok(Value::from(format!("{a}{b}")))
}

/// `a + b`: numbers, two strings, or two lists (at most [`MAX_ITEMS`] items together).
fn add(a: Value, b: Value) -> Result<Value, Error> {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        charge(x.len().saturating_add(y.len()))?;
    } else if is_sequence(&a) && is_sequence(&b) {
        let items = a.len().unwrap_or(0).saturating_add(b.len().unwrap_or(0));
        if items > MAX_ITEMS {
            return Err(too_many_items());
        }
    } else if let Some(sum) = small_ints(&a, &b).and_then(|(x, y)| x.checked_add(y)) {
        return Ok(Value::from(sum));
    }
    native(&NATIVE.add, a, b)
}

/// `a * b`: numbers, a string repeated (charged), or a list repeated (at most [`MAX_ITEMS`] items).
fn mul(a: Value, b: Value) -> Result<Value, Error> {
    if let Some(product) = small_ints(&a, &b).and_then(|(x, y)| x.checked_mul(y)) {
        return Ok(Value::from(product));
    }
    let (one, times) = if b.as_usize().is_some() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if let Some(times) = times.as_usize() {
        if let Some(text) = one.as_str() {
            charge(text.len().saturating_mul(times))?;
        } else if is_sequence(one) {
            let len = one.len();
            if len.unwrap_or(0).saturating_mul(times) > MAX_ITEMS {
                return Err(too_many_items());
            }
            // minijinja repeats lazily and steps through every copy, even of nothing: iterating
            // `[] * 99999999 * 99999999` would take 10^16 steps that build nothing.
            if len == Some(0) || times == 0 {
                return Ok(Value::from(Vec::<Value>::new()));
            }
        }
    }
    native(&NATIVE.mul, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x` as the rewrite wraps a walked operand.
    fn w(x: &str) -> String {
        format!("{WALKED}{x})")
    }

    fn rewritten(source: &str) -> String {
        meter(source).expect("rewrites").into_owned()
    }

    #[test]
    fn each_operator_becomes_a_call() {
        assert_eq!(rewritten("{{ a ~ b }}"), "{{ __pipecat_cat(a , b) }}");
        assert_eq!(
            rewritten("{{ a ~ b ~ c }}"),
            "{{ __pipecat_cat(__pipecat_cat(a , b) , c) }}"
        );
        assert_eq!(
            rewritten("{{x~y~z}}"),
            "{{__pipecat_cat(__pipecat_cat(x,y),z)}}"
        );
        assert_eq!(
            rewritten("{{ (a) + (b) * 2 }}"),
            "{{ __pipecat_add((a) , __pipecat_mul((b) , 2)) }}"
        );
        assert_eq!(
            rewritten("{{ a | upper ~ b | lower }}"),
            "{{ __pipecat_cat(a | upper , b | lower) }}"
        );
        assert_eq!(rewritten("{{ 2 ** 3 - 1 / 2 }}"), "{{ 2 ** 3 - 1 / 2 }}");
        assert_eq!(
            rewritten("{{ x ~ 'é' * 3 }}"),
            "{{ __pipecat_cat(x , __pipecat_mul('é' , 3)) }}"
        );
    }

    #[test]
    fn what_a_comparison_walks_is_wrapped() {
        assert_eq!(
            rewritten("{{ a == b }}"),
            format!("{{{{ {} == {} }}}}", w("a"), w("b"))
        );
        assert_eq!(
            rewritten("{{ a == 1 }}"),
            format!("{{{{ {} == 1 }}}}", w("a"))
        );
        assert_eq!(
            rewritten("{% if a not in b %}{% endif %}"),
            format!("{{% if {} not in {} %}}{{% endif %}}", w("a"), w("b"))
        );
        assert_eq!(
            rewritten("{{ (x ~ y)|length > n }}"),
            format!(
                "{{{{ {} > {} }}}}",
                w("(__pipecat_cat(x , y))|length"),
                w("n")
            )
        );
        assert_eq!(
            rewritten("{{ f(a < b) }}"),
            format!("{{{{ f({} < {}) }}}}", w("a"), w("b"))
        );
        assert_eq!(
            rewritten("{{ 0 < x.y < z[k] }}"),
            format!(
                "{{{{ 0 < {} < {} }}}}",
                w("x.y"),
                w(&format!("z[{}]", w("k")))
            )
        );
        assert_eq!(
            rewritten("{{ {k: 1}[\"a\"] }}"),
            format!("{{{{ {{{}: 1}}[\"a\"] }}}}", w("k"))
        );
    }

    #[test]
    fn a_call_is_never_glued_to_the_word_before_it() {
        // Found by the template fuzz target: `in__pipecat_walked(` read as one name.
        assert_eq!(
            rewritten("{{ 'x' in-a.b }}"),
            "{{ 'x' in __pipecat_walked(-a.b) }}"
        );
        assert_eq!(
            rewritten("{{ ('x' in- a) or b }}"),
            "{{ ('x' in __pipecat_walked(- a)) or b }}"
        );
        assert_eq!(rewritten("{{ 1 in-a }}"), "{{ 1 in __pipecat_walked(-a) }}");
    }

    #[test]
    fn a_negated_test_is_wrapped_whole() {
        // Found by the template fuzz target (regression-negated-test): `a is not t` is `not (a is t)` with a
        // span that starts at `t`, and only `t` was wrapped.
        assert_eq!(
            rewritten("{{ 'x' in a is not none }}"),
            format!("{{{{ 'x' in {} }}}}", w("a is not none"))
        );
        assert_eq!(
            rewritten("{{ -a.b is not odd == x }}"),
            format!("{{{{ {} == {} }}}}", w("-a.b is not odd"), w("x"))
        );
    }

    #[test]
    fn a_keyword_read_as_a_name_is_a_syntax_error() {
        // Found by the template fuzz target: minijinja parses `a == not` with `not` as a variable.
        for source in [
            "{{ i ~ not }}",
            "{{ a == not }}",
            "{% if x == not %}{% endif %}",
        ] {
            let error = meter(source).expect_err(source);
            assert!(error.contains("`not` at line 1 is a keyword"), "{error}");
        }
        assert!(meter("{{ not a ~ b }}").is_ok());
    }

    #[test]
    fn the_metered_functions_cannot_be_named_or_shadowed() {
        for source in [
            "{% set __pipecat_cat = x %}{{ a ~ b }}",
            "{% macro __pipecat_cat(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ a ~ b }}",
            "{{ __pipecat_walked(a) }}",
            "{% for __pipecat_add in [1] %}{% endfor %}",
            "text\n{{ x.__pipecat_mul }}",
        ] {
            let error = meter(source).expect_err(source);
            assert!(
                error.starts_with("syntax error: names starting with `__pipecat_` are reserved"),
                "{source}: {error}"
            );
        }
        assert!(
            meter("{{ x }}\n{{ y }}\n{{ __pipecat_cat(1, 2) }}")
                .unwrap_err()
                .ends_with("(line 3)")
        );
        // Only names are reserved: text and strings may say anything.
        assert!(meter("__pipecat_cat {{ '__pipecat_cat' ~ a }}").is_ok());
    }

    #[test]
    fn a_chain_too_long_to_nest_is_a_syntax_error() {
        let chain = |n: usize, op: &str| format!("{{{{ ({}) }}}}", vec!["a"; n + 1].join(op));
        for op in ["~", "+", "*"] {
            assert!(meter(&chain(MAX_CHAIN, op)).is_ok(), "{op}");
            // Found by the template fuzz target (regression-long-chain): 163 `~` in one condition.
            let error = meter(&chain(163, op)).expect_err(op);
            assert!(
                error.starts_with("syntax error: an expression chains more than 140"),
                "{error}"
            );
        }
    }

    #[test]
    fn sources_without_operators_or_that_do_not_parse_are_left_alone() {
        assert!(matches!(meter("{{ a }} text"), Ok(Cow::Borrowed(_))));
        assert!(matches!(meter("{{ a ~ }}"), Ok(Cow::Borrowed(_))));
    }
}
