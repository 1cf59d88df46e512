using SlmKit.Tokenizers;

namespace SlmKit.Tests.ChatTemplates;

/// <summary>
/// The Jinja2 subset on small templates: whitespace control, scoping, filters, Python value semantics, and errors
/// for what is not supported. Expected strings are what Jinja2 3.1 prints with Hugging Face's settings.
/// </summary>
public sealed class ChatTemplateSyntaxTests
{
    private static string Render(string source, IReadOnlyDictionary<string, object?>? variables = null, IReadOnlyList<ChatMessage>? messages = null) =>
        ChatTemplate.Parse(source).Render(messages ?? [], addGenerationPrompt: false, extraVariables: variables);

    [Theory]
    // trim_blocks drops the newline after a block tag; lstrip_blocks drops indentation before one.
    [InlineData("  {% if true %}\nA\n  {% endif %}\nB", "A\nB")]
    // '-' strips all whitespace on its side, newlines included; output tags are not trimmed by trim_blocks.
    [InlineData("a  \n {{- 'b' -}}  \n c", "abc")]
    [InlineData("{{ 'x' }}\ny", "x\ny")]
    // A comment also trims the newline after it; the final newline of the template is dropped.
    [InlineData("{# note #}\nz\n", "z")]
    [InlineData("{% raw %}{{ not evaluated }}{% endraw %}", "{{ not evaluated }}")]
    [InlineData("{% for x in [1, 2, 3] %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", "1,2,3")]
    [InlineData("{% for x in 'abc' %}{{ loop.index }}{{ loop.revindex0 }}{{ loop.length }}{% endfor %}", "123213303")]
    [InlineData("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.index }}{% else %}none{% endfor %}", "2142")]
    [InlineData("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for x in [1, 2, 3] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}", "1")]
    [InlineData("{% for x in [1, 2] %}{{ loop.previtem | default('-') }}{{ loop.nextitem | default('-') }}{% endfor %}", "-21-")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{% for k, v in {'b': 1, 'A': 2} | dictsort %}{{ k }}{{ v }}{% endfor %}", "A2b1")]
    // A set inside a loop stays in the loop; a namespace carries state out.
    [InlineData("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{% endfor %}{{ x }}", "1")]
    [InlineData("{% set ns = namespace(total=0) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}", "6")]
    [InlineData("{% set block %}  hi {{ 1 + 1 }}  {% endset %}[{{ block | trim }}]", "[hi 2]")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', punct='?') }}", "Hi Bo! Hi Al?")]
    [InlineData("{% filter upper %}shout{% endfilter %}", "SHOUT")]
    [InlineData("{% generation %}kept{% endgeneration %}", "kept")]
    // Values print as Python prints them.
    [InlineData("{{ none }} {{ true }} {{ 1.0 }} {{ 1e-7 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }}", "None True 1.0 1e-07 2.5 3 -4 2 1024")]
    [InlineData("{{ [1, 'a', none, true] }} {{ {'k': 'it\\'s'} }} {{ (1,) }}", "[1, 'a', None, True] {'k': \"it's\"} (1,)")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ missing }}", "a1None")]
    [InlineData("{{ missing }}{{ missing is defined }}{{ {'a': 1}.b is defined }}", "FalseFalse")]
    [InlineData("{{ 'abcdef'[1:3] }}{{ 'abc'[::-1] }}{{ [1, 2, 3][-1] }}{{ [1, 2, 3][1:] }}", "bccba3[2, 3]")]
    [InlineData("{{ 'a' if false }}|{{ 'y' if 1 > 0 else 'n' }}|{{ 0 or 'z' }}|{{ 1 and 2 }}", "|y|z|2")]
    [InlineData("{{ 'b' in 'abc' }}{{ 2 not in [1, 2] }}{{ 'k' in {'k': 0} }}{{ 1 == 1.0 }}{{ 1 < 2 <= 2 }}", "TrueFalseTrueTrueTrue")]
    // String methods.
    [InlineData("{{ '  x y  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split() }}|{{ 'a.b.c'.rsplit('.', 1) }}", "x y|['a', 'b', '', 'c']|['a', 'b', 'c']|['a.b', 'c']")]
    [InlineData("{{ 'xxhixx'.lstrip('x') }}{{ 'Hello'.startswith(('He', 'x')) }}{{ 'abc'.endswith('c') }}{{ 'aaa'.replace('a', 'b', 2) }}{{ 'hello world'.title() }}", "hixxTrueTruebbaHello World")]
    [InlineData("{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 'd') }}{{ {'a': 1}.get('b') }}{{ {'a': 1, 'b': 2}.keys() | list }}", "1dNone['a', 'b']")]
    // Filters.
    [InlineData("{{ [3, 1, 2] | sort | join(',') }}|{{ ['b', 'A', 'a'] | unique | list }}|{{ [1, 2] | first }}{{ [1, 2] | last }}|{{ 'Ab' | lower }}{{ 'ab' | upper }}", "1,2,3|['b', 'A']|12|abAB")]
    [InlineData("{{ [{'n': 'x', 't': 1}, {'n': 'y'}] | selectattr('t', 'defined') | map(attribute='n') | list }}", "['x']")]
    [InlineData("{{ [{'r': 'user'}, {'r': 'bot'}] | rejectattr('r', 'equalto', 'user') | list | length }}{{ ['a', 'b'] | map('upper') | join }}", "1AB")]
    [InlineData("{{ '' | default('d') }}{{ '' | default('d', true) }}{{ missing | d('m') }}{{ none | default('n') }}", "dmNone")]
    [InlineData("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'x\ny' | indent(2, first=true) }}", "a\n  b\n\n  c|  x\n  y")]
    [InlineData("{{ '3' | int + 1 }} {{ 'x' | int }} {{ 2.7 | int }} {{ 2 | float }} {{ -3 | abs }} {{ 2.5 | round }} {{ 'hello world' | capitalize }}", "4 0 2 2.0 3 2.0 Hello world")]
    [InlineData("{{ {'b': [1, 2.5, 'é'], 'a': none, 'c': true} | tojson }}", "{\"b\": [1, 2.5, \"é\"], \"a\": null, \"c\": true}")]
    [InlineData("{{ {'a': [1, {}], 'b': []} | tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}")]
    [InlineData("{{ 'é\"\n' | tojson(ensure_ascii=true) }}{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}", "\"\\u00e9\\\"\\n\"{\"a\": 2, \"b\": 1}")]
    [InlineData("{{ range(3) | list }}{{ range(1, 7, 3) | list }}{{ dict(a=1) }}", "[0, 1, 2][1, 4]{'a': 1}")]
    [InlineData("{{ 4 is divisibleby 2 }}{{ 3 is odd }}{{ 'x' is string }}{{ 1 is number }}{{ 1.5 is integer }}{{ [] is sequence }}{{ {} is mapping }}{{ none is none }}", "TrueTrueTrueTrueFalseTrueTrueTrue")]
    public void Renders_like_jinja2(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void Messages_are_dicts_with_parsed_tool_call_arguments()
    {
        var messages = new ChatMessage[]
        {
            new("assistant", null) { ToolCalls = [new ChatToolCall("c1", "f", """{"n": 1, "s": "x"}""")] },
            new("tool", "ok") { ToolCallId = "c1", Name = "f" },
        };
        string text = Render(
            "{% for m in messages %}{{ m.role }}:{{ m.content }}:{{ 'tool_calls' in m }}:{{ m.tool_call_id }}:{{ m.name }}" +
            "{% for c in m.tool_calls | default([]) %}|{{ c.id }} {{ c.type }} {{ c.function.name }} {{ c.function.arguments.n + 1 }} {{ c.function.arguments | tojson }}{% endfor %};{% endfor %}",
            messages: messages);
        Assert.Equal("assistant:None:True::|c1 function f 2 {\"n\": 1, \"s\": \"x\"};tool:ok:False:c1:f;", text);
    }

    [Fact]
    public void Undefined_attribute_of_undefined_is_an_error_with_its_position()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => Render("line one\n{{ missing.attr }}"));
        Assert.False(ex.RaisedByTemplate);
        Assert.Equal((2, 11), (ex.Line, ex.Column)); // the '.' that reads the attribute
        Assert.Contains("'missing' is undefined", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Raise_exception_carries_the_templates_message()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => Render("{{ raise_exception('Roles must alternate: ' ~ 3) }}"));
        Assert.True(ex.RaisedByTemplate);
        Assert.Equal("Roles must alternate: 3", ex.Message);
    }

    [Theory]
    [InlineData("ok\n  {% include 'other.jinja' %}", 2, 3, "unsupported tag 'include'")]
    [InlineData("{% extends 'base' %}", 1, 1, "unsupported tag 'extends'")]
    [InlineData("a\nb {{ messages | frobnicate }}", 2, 17, "unknown filter 'frobnicate'")]
    [InlineData("{% if x is prime %}{% endif %}", 1, 12, "unknown test 'prime'")]
    [InlineData("{% if true %}\nno end", 1, 1, "'if' is not closed")]
    [InlineData("{% endfor %}", 1, 1, "unexpected 'endfor'")]
    [InlineData("{{ 1 + }}", 1, 7, "expected an expression")]
    [InlineData("{{ 'unclosed }}", 1, 4, "string literal is not closed")]
    [InlineData("{% for x in y recursive %}{% endfor %}", 1, 15, "recursive loops are not supported")]
    [InlineData("{{ f(*args) }}", 1, 6, "*args and **kwargs")]
    public void Unsupported_or_malformed_syntax_fails_at_parse_with_line_and_column(string source, int line, int column, string problem)
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source));
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (ex.Line, ex.Column));
        Assert.Contains($"line {line}, column {column}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Absurd_nesting_is_an_error_not_a_stack_overflow()
    {
        string deepParens = "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}";
        Assert.Contains("nesting is deeper", Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(deepParens)).Message, StringComparison.Ordinal);
        string deepIfs = string.Concat(Enumerable.Repeat("{% if true %}", 5000)) + string.Concat(Enumerable.Repeat("{% endif %}", 5000));
        Assert.Contains("nesting is deeper", Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(deepIfs)).Message, StringComparison.Ordinal);
        string deepNots = "{{ " + string.Concat(Enumerable.Repeat("not ", 5000)) + "x }}";
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(deepNots));
    }

    [Fact]
    public void Unsupported_method_fails_at_render_naming_it_with_line_and_column()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => Render("\n\n   {{ 'abc'.zfill(5) }}"));
        Assert.Contains("zfill", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, ex.Line);
        Assert.Contains("line 3, column", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Strftime_now_reads_the_given_clock()
    {
        var clock = new FixedClock(new DateTimeOffset(2024, 12, 5, 14, 7, 9, TimeSpan.Zero));
        string text = ChatTemplate.Parse("{{ strftime_now('%Y-%m-%d %H:%M:%S %A %a %B %b %d %-d %I%p %j') }}", clock).Render([], false);
        Assert.Equal("2024-12-05 14:07:09 Thursday Thu December Dec 05 5 02PM 340", text);
    }

    [Fact]
    public void Extra_variables_reach_the_template_as_python_values()
    {
        var variables = new Dictionary<string, object?>
        {
            ["flag"] = false,
            ["n"] = 3,
            ["items"] = new[] { "a", "b" },
            ["map"] = new Dictionary<string, object?> { ["k"] = 1.5 },
        };
        Assert.Equal("False 4 a,b 1.5", Render("{{ flag }} {{ n + 1 }} {{ items | join(',') }} {{ map.k }}", variables));
    }
}
