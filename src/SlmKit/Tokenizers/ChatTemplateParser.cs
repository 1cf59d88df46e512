namespace SlmKit.Tokenizers;

/// <summary>
/// Recursive-descent parser for the Jinja2 subset that chat templates use. Operator precedence follows Jinja2's
/// parser: conditional, or, and, not, comparisons, + -, ~, * / // %, **, unary minus, then postfix
/// (attribute, subscript, call) followed by filters and tests. Anything outside the subset is an error here,
/// never silently ignored.
/// </summary>
internal sealed class ChatTemplateParser
{
    private readonly List<TemplateSegment> _segments;
    private int _segment;
    private List<TemplateToken> _tokens = [];
    private int _pos;
    private TemplateSegment _current = null!;

    // A template is input from a model file: nesting deep enough to overflow the stack must be an error instead.
    private const int MaxNesting = 256;
    private int _nesting;

    private ChatTemplateParser(List<TemplateSegment> segments) => _segments = segments;

    public static List<TemplateNode> Parse(string source)
    {
        var parser = new ChatTemplateParser(ChatTemplateLexer.Tokenize(source));
        var (body, end) = parser.ParseBody(null, []);
        if (end is not null)
            throw new ChatTemplateException($"unexpected '{end}'", parser._current.Line, parser._current.Column);
        return body;
    }

    /// <summary>Parses nodes until a statement whose tag is one of <paramref name="endTags"/>, which is consumed.</summary>
    private (List<TemplateNode> Body, string? EndTag) ParseBody(TemplateSegment? opener, string[] endTags)
    {
        var body = new List<TemplateNode>();
        while (_segment < _segments.Count)
        {
            var seg = _segments[_segment++];
            switch (seg.Kind)
            {
                case SegmentKind.Text:
                    body.Add(new TextNode(seg.Text, seg.Line, seg.Column));
                    break;
                case SegmentKind.Output:
                    Begin(seg);
                    if (_tokens.Count == 0)
                        throw Error(seg.Line, seg.Column, "empty expression '{{ }}'");
                    body.Add(new OutputNode(ParseTupleOrExpression(), seg.Line, seg.Column));
                    ExpectEnd();
                    break;
                default:
                    Begin(seg);
                    if (_tokens.Count == 0 || _tokens[0].Kind != TokenKind.Name)
                        throw Error(seg.Line, seg.Column, "expected a tag name after '{%'");
                    string tag = _tokens[0].Text;
                    if (Array.IndexOf(endTags, tag) >= 0)
                    {
                        _pos = 1;
                        return (body, tag);
                    }
                    _pos = 1;
                    body.Add(ParseStatement(tag, seg));
                    break;
            }
        }
        if (endTags.Length > 0 && opener is not null)
        {
            throw Error(opener.Line, opener.Column,
                $"'{opener.Tokens[0].Text}' is not closed: expected '{endTags[^1]}' before the end of the template");
        }
        return (body, null);
    }

    private void Begin(TemplateSegment seg)
    {
        _current = seg;
        _tokens = seg.Tokens;
        _pos = 0;
    }

    private TemplateNode ParseStatement(string tag, TemplateSegment seg)
    {
        Enter(seg.Line, seg.Column);
        try
        {
            return ParseStatementCore(tag, seg);
        }
        finally
        {
            _nesting--;
        }
    }

    private void Enter(int line, int column)
    {
        if (++_nesting > MaxNesting)
            throw Error(line, column, $"nesting is deeper than {MaxNesting} levels");
    }

    private TemplateNode ParseStatementCore(string tag, TemplateSegment seg)
    {
        switch (tag)
        {
            case "if":
                return ParseIf(seg);
            case "for":
                return ParseFor(seg);
            case "set":
                return ParseSet(seg);
            case "macro":
                return ParseMacro(seg);
            case "filter":
            {
                var filters = ParseFilterChain(requireFirst: true);
                ExpectEnd();
                var (body, _) = ParseBody(seg, ["endfilter"]);
                ExpectEnd();
                return new FilterBlockNode(filters, body, seg.Line, seg.Column);
            }
            case "with":
            {
                var assignments = new List<(string, TemplateExpr)>();
                while (!AtEnd)
                {
                    if (assignments.Count > 0)
                        ExpectOperator(",");
                    string name = ExpectName();
                    ExpectOperator("=");
                    assignments.Add((name, ParseExpression()));
                }
                var (body, _) = ParseBody(seg, ["endwith"]);
                ExpectEnd();
                return new WithNode(assignments, body, seg.Line, seg.Column);
            }
            case "generation":
            {
                ExpectEnd();
                var (body, _) = ParseBody(seg, ["endgeneration"]);
                ExpectEnd();
                return new GenerationNode(body, seg.Line, seg.Column);
            }
            case "break":
            case "continue":
                ExpectEnd();
                return new LoopControlNode(tag == "break", seg.Line, seg.Column);
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endfilter" or "endwith" or "endgeneration" or "endraw":
                throw Error(seg.Line, seg.Column, $"unexpected '{tag}' without a matching opening tag");
            default:
                throw Error(seg.Line, seg.Column, $"unsupported tag '{tag}'");
        }
    }

    private IfNode ParseIf(TemplateSegment seg)
    {
        var branches = new List<(TemplateExpr, List<TemplateNode>)>();
        List<TemplateNode>? elseBody = null;
        var condition = ParseTupleOrExpression();
        ExpectEnd();
        while (true)
        {
            var (body, end) = ParseBody(seg, ["elif", "else", "endif"]);
            branches.Add((condition, body));
            if (end == "elif")
            {
                condition = ParseTupleOrExpression();
                ExpectEnd();
                continue;
            }
            if (end == "else")
            {
                ExpectEnd();
                (elseBody, _) = ParseBody(seg, ["endif"]);
            }
            ExpectEnd();
            return new IfNode(branches, elseBody, seg.Line, seg.Column);
        }
    }

    private ForNode ParseFor(TemplateSegment seg)
    {
        var targets = ParseTargetNames();
        ExpectKeyword("in");
        // The iterable is parsed without a conditional so that a trailing 'if' filters the loop.
        var iterable = ParseOr();
        if (IsOperator(","))
        {
            var items = new List<TemplateExpr> { iterable };
            while (TryOperator(","))
                items.Add(ParseOr());
            iterable = new ListExpr(items, IsTuple: true, iterable.Line, iterable.Column);
        }
        TemplateExpr? filter = null;
        if (TryKeyword("if"))
            filter = ParseExpression();
        if (IsKeyword("recursive"))
            throw ErrorAtToken("recursive loops are not supported");
        ExpectEnd();
        var (body, end) = ParseBody(seg, ["else", "endfor"]);
        List<TemplateNode>? elseBody = null;
        if (end == "else")
        {
            ExpectEnd();
            (elseBody, _) = ParseBody(seg, ["endfor"]);
        }
        ExpectEnd();
        return new ForNode(targets, iterable, filter, body, elseBody, seg.Line, seg.Column);
    }

    private TemplateNode ParseSet(TemplateSegment seg)
    {
        var targets = ParseTargetNames();
        string? attribute = null;
        if (targets.Count == 1 && TryOperator("."))
            attribute = ExpectName();
        if (TryOperator("="))
        {
            var value = ParseTupleOrExpression();
            ExpectEnd();
            return new SetNode(targets, attribute, value, seg.Line, seg.Column);
        }
        if (targets.Count != 1)
            throw ErrorAtToken("expected '=' after the names to set");
        var filters = ParseFilterChain(requireFirst: false);
        ExpectEnd();
        var (body, _) = ParseBody(seg, ["endset"]);
        ExpectEnd();
        return new BlockSetNode(targets[0], attribute, filters, body, seg.Line, seg.Column);
    }

    private MacroNode ParseMacro(TemplateSegment seg)
    {
        string name = ExpectName();
        var parameters = new List<(string, TemplateExpr?)>();
        ExpectOperator("(");
        while (!TryOperator(")"))
        {
            if (parameters.Count > 0)
                ExpectOperator(",");
            if (TryOperator(")"))
                break;
            string param = ExpectName();
            TemplateExpr? defaultValue = TryOperator("=") ? ParseExpression() : null;
            parameters.Add((param, defaultValue));
        }
        ExpectEnd();
        var (body, _) = ParseBody(seg, ["endmacro"]);
        if (!AtEnd && Peek.Kind == TokenKind.Name && Peek.Text == name)
            _pos++;
        ExpectEnd();
        return new MacroNode(name, parameters, body, seg.Line, seg.Column);
    }

    private List<string> ParseTargetNames()
    {
        var names = new List<string>();
        bool parens = TryOperator("(");
        do
        {
            if (parens && IsOperator(")"))
                break;
            names.Add(ExpectName());
        }
        while (TryOperator(","));
        if (parens)
            ExpectOperator(")");
        return names;
    }

    private List<FilterCall> ParseFilterChain(bool requireFirst)
    {
        var filters = new List<FilterCall>();
        if (requireFirst)
            filters.Add(ParseFilterCall());
        while (TryOperator("|"))
            filters.Add(ParseFilterCall());
        return filters;
    }

    private FilterCall ParseFilterCall()
    {
        var token = Peek;
        string name = ExpectName();
        if (!ChatTemplateBuiltins.IsFilter(name))
            throw Error(token.Line, token.Column, $"unknown filter '{name}'");
        var args = new List<TemplateExpr>();
        var kwargs = new List<(string, TemplateExpr)>();
        if (TryOperator("("))
            ParseCallArguments(args, kwargs);
        return new FilterCall(name, args, kwargs, token.Line, token.Column);
    }

    // ---- expressions ----

    private TemplateExpr ParseTupleOrExpression()
    {
        var first = ParseExpression();
        if (!IsOperator(","))
            return first;
        var items = new List<TemplateExpr> { first };
        while (TryOperator(","))
        {
            if (AtEnd || IsOperator(")"))
                break;
            items.Add(ParseExpression());
        }
        return new ListExpr(items, IsTuple: true, first.Line, first.Column);
    }

    private TemplateExpr ParseExpression()
    {
        if (!AtEnd)
            Enter(Peek.Line, Peek.Column);
        else
            _nesting++;
        try
        {
            return ParseConditional();
        }
        finally
        {
            _nesting--;
        }
    }

    private TemplateExpr ParseConditional()
    {
        var expr = ParseOr();
        while (IsKeyword("if"))
        {
            var token = Next();
            var condition = ParseOr();
            TemplateExpr? elseExpr = TryKeyword("else") ? ParseExpression() : null;
            expr = new ConditionalExpr(condition, expr, elseExpr, token.Line, token.Column);
        }
        return expr;
    }

    private TemplateExpr ParseOr()
    {
        var left = ParseAnd();
        while (IsKeyword("or"))
        {
            var token = Next();
            left = new OrExpr(left, ParseAnd(), token.Line, token.Column);
        }
        return left;
    }

    private TemplateExpr ParseAnd()
    {
        var left = ParseNot();
        while (IsKeyword("and"))
        {
            var token = Next();
            left = new AndExpr(left, ParseNot(), token.Line, token.Column);
        }
        return left;
    }

    private TemplateExpr ParseNot()
    {
        if (IsKeyword("not"))
        {
            var token = Next();
            Enter(token.Line, token.Column);
            var operand = ParseNot();
            _nesting--;
            return new NotExpr(operand, token.Line, token.Column);
        }
        return ParseCompare();
    }

    private TemplateExpr ParseCompare()
    {
        var first = ParseMath1();
        List<(string, TemplateExpr)>? rest = null;
        while (!AtEnd)
        {
            var token = Peek;
            string op;
            if (token.Kind == TokenKind.Operator && token.Text is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                op = token.Text;
                _pos++;
            }
            else if (IsKeyword("in"))
            {
                op = "in";
                _pos++;
            }
            else if (IsKeyword("not") && _pos + 1 < _tokens.Count && _tokens[_pos + 1] is { Kind: TokenKind.Name, Text: "in" })
            {
                op = "not in";
                _pos += 2;
            }
            else
            {
                break;
            }
            (rest ??= []).Add((op, ParseMath1()));
        }
        return rest is null ? first : new CompareExpr(first, rest, first.Line, first.Column);
    }

    private TemplateExpr ParseMath1()
    {
        var left = ParseConcat();
        while (!AtEnd && Peek.Kind == TokenKind.Operator && Peek.Text is "+" or "-")
        {
            var token = Next();
            left = new BinaryExpr(token.Text, left, ParseConcat(), token.Line, token.Column);
        }
        return left;
    }

    private TemplateExpr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOperator("~"))
        {
            var token = Next();
            left = new BinaryExpr("~", left, ParseMath2(), token.Line, token.Column);
        }
        return left;
    }

    private TemplateExpr ParseMath2()
    {
        var left = ParsePow();
        while (!AtEnd && Peek.Kind == TokenKind.Operator && Peek.Text is "*" or "/" or "//" or "%")
        {
            var token = Next();
            left = new BinaryExpr(token.Text, left, ParsePow(), token.Line, token.Column);
        }
        return left;
    }

    private TemplateExpr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (IsOperator("**"))
        {
            var token = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), token.Line, token.Column);
        }
        return left;
    }

    private TemplateExpr ParseUnary(bool withFilter)
    {
        TemplateExpr node;
        if (!AtEnd && Peek.Kind == TokenKind.Operator && Peek.Text is "-" or "+")
        {
            var token = Next();
            Enter(token.Line, token.Column);
            var operand = ParseUnary(withFilter: false);
            _nesting--;
            node = new NegateExpr(operand, token.Text == "-", token.Line, token.Column);
        }
        else
        {
            node = ParsePrimary();
        }
        node = ParsePostfix(node);
        return withFilter ? ParseFiltersAndTests(node) : node;
    }

    private TemplateExpr ParsePrimary()
    {
        if (AtEnd)
            throw ErrorAtEnd("expected an expression");
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line, token.Column),
                    "false" or "False" => new LiteralExpr(false, token.Line, token.Column),
                    "none" or "None" => new LiteralExpr(null, token.Line, token.Column),
                    _ => new NameExpr(token.Text, token.Line, token.Column),
                };
            case TokenKind.String:
            {
                // Adjacent string literals concatenate, as in Python.
                string value = (string)token.Value!;
                while (!AtEnd && Peek.Kind == TokenKind.String)
                    value += (string)Next().Value!;
                return new LiteralExpr(value, token.Line, token.Column);
            }
            case TokenKind.Integer:
            case TokenKind.Float:
                return new LiteralExpr(token.Value, token.Line, token.Column);
        }
        switch (token.Text)
        {
            case "(":
            {
                if (TryOperator(")"))
                    return new ListExpr([], IsTuple: true, token.Line, token.Column);
                var first = ParseExpression();
                if (TryOperator(")"))
                    return first;
                var items = new List<TemplateExpr> { first };
                while (TryOperator(","))
                {
                    if (IsOperator(")"))
                        break;
                    items.Add(ParseExpression());
                }
                ExpectOperator(")");
                return new ListExpr(items, IsTuple: true, token.Line, token.Column);
            }
            case "[":
            {
                var items = new List<TemplateExpr>();
                while (!TryOperator("]"))
                {
                    if (items.Count > 0)
                        ExpectOperator(",");
                    if (TryOperator("]"))
                        break;
                    items.Add(ParseExpression());
                }
                return new ListExpr(items, IsTuple: false, token.Line, token.Column);
            }
            case "{":
            {
                var items = new List<(TemplateExpr, TemplateExpr)>();
                while (!TryOperator("}"))
                {
                    if (items.Count > 0)
                        ExpectOperator(",");
                    if (TryOperator("}"))
                        break;
                    var key = ParseExpression();
                    ExpectOperator(":");
                    items.Add((key, ParseExpression()));
                }
                return new DictExpr(items, token.Line, token.Column);
            }
        }
        throw Error(token.Line, token.Column, $"unexpected '{token.Text}'");
    }

    private TemplateExpr ParsePostfix(TemplateExpr node)
    {
        while (!AtEnd && Peek.Kind == TokenKind.Operator)
        {
            var token = Peek;
            if (token.Text == ".")
            {
                _pos++;
                if (AtEnd)
                    throw ErrorAtEnd("expected an attribute name after '.'");
                var name = Next();
                node = name.Kind switch
                {
                    TokenKind.Name => new AttributeExpr(node, name.Text, token.Line, token.Column),
                    TokenKind.Integer => new ItemExpr(node, new LiteralExpr(name.Value, name.Line, name.Column), token.Line, token.Column),
                    _ => throw Error(name.Line, name.Column, $"unexpected '{name.Text}' after '.'"),
                };
            }
            else if (token.Text == "[")
            {
                _pos++;
                node = ParseSubscript(node, token);
            }
            else if (token.Text == "(")
            {
                _pos++;
                var args = new List<TemplateExpr>();
                var kwargs = new List<(string, TemplateExpr)>();
                ParseCallArguments(args, kwargs);
                node = new CallExpr(node, args, kwargs, token.Line, token.Column);
            }
            else
            {
                break;
            }
        }
        return node;
    }

    private TemplateExpr ParseSubscript(TemplateExpr target, TemplateToken open)
    {
        TemplateExpr? start = null, stop = null, step = null;
        if (!IsOperator(":"))
        {
            start = ParseExpression();
            if (TryOperator("]"))
                return new ItemExpr(target, start, open.Line, open.Column);
        }
        ExpectOperator(":");
        if (!IsOperator("]") && !IsOperator(":"))
            stop = ParseExpression();
        if (TryOperator(":") && !IsOperator("]"))
            step = ParseExpression();
        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step, open.Line, open.Column);
    }

    private void ParseCallArguments(List<TemplateExpr> args, List<(string, TemplateExpr)> kwargs)
    {
        while (!TryOperator(")"))
        {
            if (args.Count + kwargs.Count > 0)
                ExpectOperator(",");
            if (TryOperator(")"))
                break;
            if (IsOperator("*") || IsOperator("**"))
                throw ErrorAtToken("*args and **kwargs in calls are not supported");
            if (!AtEnd && Peek.Kind == TokenKind.Name && _pos + 1 < _tokens.Count && _tokens[_pos + 1] is { Kind: TokenKind.Operator, Text: "=" })
            {
                string name = Next().Text;
                _pos++;
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0)
                    throw ErrorAtToken("a positional argument follows a keyword argument");
                args.Add(ParseExpression());
            }
        }
    }

    private TemplateExpr ParseFiltersAndTests(TemplateExpr node)
    {
        while (!AtEnd)
        {
            if (IsOperator("|"))
            {
                var bar = Next();
                node = new FilterExpr(node, ParseFilterCall(), bar.Line, bar.Column);
            }
            else if (IsKeyword("is"))
            {
                var isToken = Next();
                bool negated = TryKeyword("not");
                var nameToken = Peek;
                string name = ExpectName();
                // 'is none', 'is true' and 'is false' read as names here even though they are literals elsewhere.
                name = name switch { "None" => "none", "True" => "true", "False" => "false", _ => name };
                if (!ChatTemplateBuiltins.IsTest(name))
                    throw Error(nameToken.Line, nameToken.Column, $"unknown test '{name}'");
                var args = new List<TemplateExpr>();
                if (TryOperator("("))
                {
                    var kwargs = new List<(string, TemplateExpr)>();
                    ParseCallArguments(args, kwargs);
                    if (kwargs.Count > 0)
                        throw Error(nameToken.Line, nameToken.Column, "tests take no keyword arguments");
                }
                else if (!AtEnd && (Peek.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                             || (Peek.Kind == TokenKind.Name && Peek.Text is not ("else" or "or" or "and" or "if" or "is" or "not" or "in"))
                             || (Peek.Kind == TokenKind.Operator && Peek.Text is "[" or "{")))
                {
                    // Jinja2 allows one argument without parentheses: 'x is divisibleby 3', 'x is sameas none'.
                    args.Add(ParsePostfix(ParsePrimary()));
                }
                node = new TestExpr(node, name, args, negated, isToken.Line, isToken.Column);
            }
            else
            {
                break;
            }
        }
        return node;
    }

    // ---- token helpers ----

    private bool AtEnd => _pos >= _tokens.Count;

    private TemplateToken Peek => _tokens[_pos];

    private TemplateToken Next() => _tokens[_pos++];

    private bool IsOperator(string op) => !AtEnd && Peek.Kind == TokenKind.Operator && Peek.Text == op;

    private bool IsKeyword(string name) => !AtEnd && Peek.Kind == TokenKind.Name && Peek.Text == name;

    private bool TryOperator(string op)
    {
        if (!IsOperator(op))
            return false;
        _pos++;
        return true;
    }

    private bool TryKeyword(string name)
    {
        if (!IsKeyword(name))
            return false;
        _pos++;
        return true;
    }

    private void ExpectOperator(string op)
    {
        if (!TryOperator(op))
            throw AtEnd ? ErrorAtEnd($"expected '{op}'") : ErrorAtToken($"expected '{op}' but found '{Peek.Text}'");
    }

    private void ExpectKeyword(string name)
    {
        if (!TryKeyword(name))
            throw AtEnd ? ErrorAtEnd($"expected '{name}'") : ErrorAtToken($"expected '{name}' but found '{Peek.Text}'");
    }

    private string ExpectName()
    {
        if (AtEnd)
            throw ErrorAtEnd("expected a name");
        if (Peek.Kind != TokenKind.Name)
            throw ErrorAtToken($"expected a name but found '{Peek.Text}'");
        return Next().Text;
    }

    private void ExpectEnd()
    {
        if (!AtEnd)
            throw ErrorAtToken($"unexpected '{Peek.Text}'");
    }

    private ChatTemplateException ErrorAtToken(string problem) => Error(Peek.Line, Peek.Column, problem);

    private ChatTemplateException ErrorAtEnd(string problem)
    {
        var last = _tokens.Count > 0 ? _tokens[^1] : default;
        return _tokens.Count > 0
            ? Error(last.Line, last.Column + last.Text.Length, problem)
            : Error(_current.Line, _current.Column, problem);
    }

    private static ChatTemplateException Error(int line, int column, string problem) => new(problem, line, column);
}
