//! The one statement shape the emulator answers: `SELECT <columns | *> FROM <table name> [;]`.

/// A parsed `SELECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Select {
    /// Selected column names, unquoted; `None` for `*`.
    pub(crate) columns: Option<Vec<String>>,
    /// One to three name parts: `[catalog.][schema.]table`, unquoted.
    pub(crate) table: Vec<String>,
}

/// Where parsing stopped: the offending token as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) near: String,
    /// 0-based character position in the statement.
    pub(crate) pos: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Identifier or keyword; `quoted` for back-quoted ones, which are never keywords.
    Ident {
        text: String,
        quoted: bool,
    },
    Star,
    Comma,
    Dot,
    Semicolon,
    Other(String),
    End,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    src: &'a str,
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Result<(Token, usize), SyntaxError> {
        while self.chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some((pos, c)) = self.chars.next() else {
            return Ok((Token::End, self.src.len()));
        };
        let token = match c {
            '*' => Token::Star,
            ',' => Token::Comma,
            '.' => Token::Dot,
            ';' => Token::Semicolon,
            '`' => {
                let mut text = String::new();
                loop {
                    match self.chars.next() {
                        Some((_, '`')) => {
                            if self.chars.next_if(|(_, c)| *c == '`').is_some() {
                                text.push('`');
                            } else {
                                break;
                            }
                        }
                        Some((_, c)) => text.push(c),
                        None => {
                            return Err(SyntaxError {
                                near: self.src[pos..].to_owned(),
                                pos,
                            });
                        }
                    }
                }
                Token::Ident { text, quoted: true }
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut text = String::from(c);
                while let Some((_, c)) = self
                    .chars
                    .next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
                {
                    text.push(c);
                }
                Token::Ident {
                    text,
                    quoted: false,
                }
            }
            other => Token::Other(other.to_string()),
        };
        Ok((token, pos))
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    current: (Token, usize),
}

impl Parser<'_> {
    fn advance(&mut self) -> Result<(Token, usize), SyntaxError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    fn error(&self) -> SyntaxError {
        let near = match &self.current.0 {
            Token::Ident { text, quoted: true } => crate::types::backtick(text),
            Token::Ident { text, .. } | Token::Other(text) => text.clone(),
            Token::Star => "*".into(),
            Token::Comma => ",".into(),
            Token::Dot => ".".into(),
            Token::Semicolon => ";".into(),
            Token::End => "end of input".into(),
        };
        SyntaxError {
            near,
            pos: self.current.1,
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), SyntaxError> {
        match &self.current.0 {
            Token::Ident {
                text,
                quoted: false,
            } if text.eq_ignore_ascii_case(keyword) => {
                self.advance()?;
                Ok(())
            }
            _ => Err(self.error()),
        }
    }

    fn identifier(&mut self) -> Result<String, SyntaxError> {
        match &self.current.0 {
            Token::Ident { quoted: true, .. } => {}
            Token::Ident {
                text,
                quoted: false,
            } if !["select", "from"]
                .iter()
                .any(|k| text.eq_ignore_ascii_case(k)) => {}
            _ => return Err(self.error()),
        }
        match self.advance()?.0 {
            Token::Ident { text, .. } => Ok(text),
            _ => Err(self.error()),
        }
    }

    fn eat(&mut self, token: &Token) -> Result<bool, SyntaxError> {
        if &self.current.0 == token {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// Parses `SELECT <columns | *> FROM <name>[.<name>[.<name>]] [;]`: keywords in any case,
/// identifiers plain or back-quoted with back-quotes doubled inside.
pub(crate) fn parse(statement: &str) -> Result<Select, SyntaxError> {
    let mut lexer = Lexer {
        chars: statement.char_indices().peekable(),
        src: statement,
    };
    let current = lexer.next_token()?;
    let mut parser = Parser { lexer, current };
    parser.keyword("select")?;
    let columns = if parser.eat(&Token::Star)? {
        None
    } else {
        let mut columns = vec![parser.identifier()?];
        while parser.eat(&Token::Comma)? {
            columns.push(parser.identifier()?);
        }
        Some(columns)
    };
    parser.keyword("from")?;
    let mut table = vec![parser.identifier()?];
    while table.len() < 3 && parser.eat(&Token::Dot)? {
        table.push(parser.identifier()?);
    }
    parser.eat(&Token::Semicolon)?;
    if parser.current.0 != Token::End {
        return Err(parser.error());
    }
    Ok(Select { columns, table })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str, expected: Result<(Option<&[&str]>, &[&str]), &str>) {
        let got = parse(sql);
        match expected {
            Ok((columns, table)) => {
                let select = got.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
                assert_eq!(
                    select.columns,
                    columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
                    "{sql}"
                );
                assert_eq!(select.table, table, "{sql}");
            }
            Err(near) => assert_eq!(got.map_err(|e| e.near), Err(near.to_owned()), "{sql}"),
        }
    }

    #[test]
    fn cases() {
        check("SELECT * FROM a.b.c", Ok((None, &["a", "b", "c"])));
        check("select * from a.b.c ;", Ok((None, &["a", "b", "c"])));
        check(
            "SeLeCt `x`, y FROM `tre`.`co``h`.t",
            Ok((Some(&["x", "y"]), &["tre", "co`h", "t"])),
        );
        check(
            "SELECT `a``b`, `select` FROM t",
            Ok((Some(&["a`b", "select"]), &["t"])),
        );
        check(
            "SELECT `from` , ` sp ace` FROM a.b",
            Ok((Some(&["from", " sp ace"]), &["a", "b"])),
        );
        check("SELECT * FROM a.b.c.d", Err("."));
        check("SELECT * FROM a.b.c WHERE x = 1", Err("WHERE"));
        check("SELECT * FROM a.b.c; SELECT 1", Err("SELECT"));
        check("SELECT FROM a", Err("FROM"));
        check("DROP TABLE a", Err("DROP"));
        check("SELECT `a FROM b", Err("`a FROM b"));
        check("SELECT a, FROM b", Err("FROM"));
        check("", Err("end of input"));
        check("SELECT count(*) FROM t", Err("("));
    }
}
