using SlmKit.Tokenizers;

namespace SlmKit.Tests.ChatTemplates;

/// <summary>Every chat template collected in ../shared parses and renders a plain and a tool-calling conversation.</summary>
public sealed class ChatTemplateCorpusTests(ITestOutputHelper output)
{
    private static readonly TimeProvider s_fixedClock = new FixedClock(new DateTimeOffset(2024, 7, 26, 10, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Every_shared_template_renders_a_standard_and_a_tool_conversation()
    {
        var templates = ChatTemplateCorpus.LoadAll();
        var failures = new List<string>();
        int clean = 0, cleanAfterFallback = 0, stringArguments = 0;
        var notes = new List<string>();
        foreach (var (name, source) in templates)
        {
            ChatTemplate template;
            try
            {
                template = ChatTemplate.Parse(source, s_fixedClock);
            }
            catch (ChatTemplateException ex)
            {
                failures.Add($"{name}: parse: {ex.Message}");
                continue;
            }

            bool standardClean = TryShapes(template, source, name, failures, notes, ChatTemplateCorpus.StandardShapes, out bool standardFirst);
            bool toolClean, toolFirst;
            if (ChatTemplateCorpus.StringArgumentTemplates.Contains(name))
            {
                var shape = ChatTemplateCorpus.ToolShapes[0];
                var ex = Assert.Throws<ChatTemplateException>(() => template.Render(shape.Messages, true, "<s>", "</s>", shape.Tools));
                Assert.Contains("'str' and 'dict'", ex.Message, StringComparison.Ordinal);
                notes.Add($"  {name}: needs tool-call arguments as JSON text: {ex.Message}");
                stringArguments++;
                continue;
            }
            else
            {
                toolClean = TryShapes(template, source, name, failures, notes, ChatTemplateCorpus.ToolShapes, out toolFirst);
            }
            if (standardClean && toolClean)
            {
                if (standardFirst && toolFirst)
                    clean++;
                else
                    cleanAfterFallback++;
            }
        }
        output.WriteLine($"{templates.Count} templates: {clean} render both conversations as given, {cleanAfterFallback} after the template " +
            $"rejected a shape with its own raise_exception or needed a fallback shape, {stringArguments} need string tool arguments, " +
            $"{failures.Count} failures");
        foreach (string note in notes)
            output.WriteLine(note);
        foreach (string failure in failures)
            output.WriteLine("FAIL " + failure);
        Assert.True(templates.Count >= 90, $"expected the shared corpus (~100 templates), found {templates.Count}");
        Assert.Empty(failures);
    }

    /// <summary>
    /// Renders the shapes in order until one renders. A shape the template rejects with its own raise_exception
    /// (no system role, roles must alternate) is fine when the message is the template's; a shape that fails
    /// otherwise is only fine when a later shape renders (a template that needs tools, or content that is not None).
    /// </summary>
    private static bool TryShapes(ChatTemplate template, string source, string name, List<string> failures, List<string> notes,
        ChatTemplateCorpus.Shape[] shapes, out bool firstShape)
    {
        firstShape = true;
        var problems = new List<string>();
        foreach (var shape in shapes)
        {
            try
            {
                string text = template.Render(shape.Messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>",
                    tools: shape.Tools, extraVariables: shape.Variables);
                if (text.Length == 0)
                {
                    failures.Add($"{name} [{shape.Label}]: rendered nothing");
                    return false;
                }
                if (!firstShape)
                    notes.Add($"  {name}: renders [{shape.Label}] after: {string.Join("; ", problems)}");
                return true;
            }
            catch (ChatTemplateException ex) when (ex.RaisedByTemplate)
            {
                // The template's own words: the first few characters of the message are in its source.
                string probe = ex.Message.Length > 12 ? ex.Message[..12] : ex.Message;
                if (!source.Contains(probe, StringComparison.Ordinal))
                {
                    failures.Add($"{name} [{shape.Label}]: raised '{ex.Message}', which is not in the template");
                    return false;
                }
                problems.Add($"[{shape.Label}] raise_exception: {ex.Message}");
            }
            catch (ChatTemplateException ex)
            {
                problems.Add($"[{shape.Label}] {ex.Message}");
            }
            firstShape = false;
        }
        // Nothing rendered: acceptable only when the template itself refused every None-free shape.
        var refusals = new List<string>();
        for (int i = 0; i < shapes.Length; i++)
        {
            if (!shapes[i].HasNoneContent)
                refusals.Add(problems[i]);
        }
        if (refusals.TrueForAll(p => p.Contains("raise_exception", StringComparison.Ordinal)))
        {
            notes.Add($"  {name}: rejects every shape tried with its own raise_exception: {string.Join("; ", problems)}");
            return true;
        }
        failures.Add($"{name}: {string.Join("; ", problems)}");
        return false;
    }
}

/// <summary>A clock stopped at one instant, for <c>strftime_now</c>.</summary>
internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now.ToUniversalTime();

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.CreateCustomTimeZone("fixed", now.Offset, "fixed", "fixed");
}
