//! Cutting shell input and script files into statements: `;` ends a statement (`\G` too, asking
//! for vertical output) unless it is inside a quoted literal or identifier; `--` starts a comment
//! to the end of the line; lines starting with `#` are comments.

/// A statement ready to send, without its terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    /// Ended with `\G`: print rows vertically.
    pub vertical: bool,
}

/// Split `text` at terminators outside quotes. The text after the last terminator is returned
/// as the remainder (an incomplete statement), trimmed.
pub fn split(text: &str) -> (Vec<Statement>, String) {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    let mut line_start = true;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            cur.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            } else if c == q {
                // A doubled quote ('it''s') stays inside the literal.
                if chars.peek() == Some(&q) {
                    cur.push(q);
                    chars.next();
                } else {
                    quote = None;
                }
            }
            continue;
        }
        let at_line_start = line_start;
        line_start = c == '\n' || (at_line_start && c.is_whitespace());
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                cur.push(c);
            }
            '#' if at_line_start => skip_line(&mut chars, &mut line_start),
            '-' if chars.peek() == Some(&'-') => skip_line(&mut chars, &mut line_start),
            ';' => finish(&mut out, &mut cur, false),
            '\\' if matches!(chars.peek(), Some('G') | Some('g')) => {
                chars.next();
                finish(&mut out, &mut cur, true);
            }
            c => cur.push(c),
        }
    }
    (out, cur.trim().to_string())
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line_start: &mut bool) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
    *line_start = true;
}

fn finish(out: &mut Vec<Statement>, cur: &mut String, vertical: bool) {
    let sql = cur.trim();
    if !sql.is_empty() {
        out.push(Statement {
            sql: sql.to_string(),
            vertical,
        });
    }
    cur.clear();
}

/// All statements of a text; a trailing statement without terminator counts too.
pub fn statements(text: &str) -> Vec<Statement> {
    let (mut out, rest) = split(text);
    if !rest.is_empty() {
        out.push(Statement {
            sql: rest,
            vertical: false,
        });
    }
    out
}

/// Statements of a `-f` script. A script whose lines end in `;` may spread statements over
/// several lines; a script with no `;` at all has one statement per line.
pub fn script_statements(text: &str) -> Vec<Statement> {
    let has_terminators = text.lines().any(|l| {
        let t = l.trim();
        !t.starts_with('#') && !t.starts_with("--") && (t.ends_with(';') || t.ends_with("\\G"))
    });
    if has_terminators {
        statements(text)
    } else {
        text.lines().flat_map(statements).collect()
    }
}

/// Whether the shell buffer holds at least one complete statement (ends in a terminator
/// outside quotes), so it can be run.
pub fn is_complete(buf: &str) -> bool {
    let (stmts, rest) = split(buf);
    !stmts.is_empty() && rest.is_empty()
}
