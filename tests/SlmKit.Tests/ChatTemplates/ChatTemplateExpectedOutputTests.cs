using System.Text.Json;
using SlmKit.Tokenizers;

namespace SlmKit.Tests.ChatTemplates;

/// <summary>
/// Exact renderings of real templates. Phi-3-mini's is Hugging Face's own output (quoted by onnxruntime-extensions);
/// the others are derived by hand from the template text with Hugging Face's settings (trim_blocks, lstrip_blocks,
/// no trailing newline kept) and were cross-checked against Jinja2 3.1 set up the same way.
/// </summary>
public sealed class ChatTemplateExpectedOutputTests
{
    // 9 March 2025: deliberately not Llama's fallback date "26 Jul 2024", so the header proves strftime_now ran.
    private static readonly TimeProvider s_clock = new FixedClock(new DateTimeOffset(2025, 3, 9, 8, 30, 0, TimeSpan.Zero));

    private static readonly IReadOnlyList<JsonElement> s_weatherTool =
    [
        JsonDocument.Parse("""{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}""").RootElement.Clone(),
    ];

    private static readonly ChatMessage[] s_toolConversation =
    [
        new("user", "What is the weather in Paris?"),
        new("assistant", null) { ToolCalls = [new ChatToolCall("call_1", "get_weather", """{"city": "Paris"}""")] },
        new("tool", "21 degrees, sunny") { ToolCallId = "call_1", Name = "get_weather" },
    ];

    private static ChatTemplate Load(string relativePath)
    {
        string path = SharedAssets.Require(relativePath);
        return ChatTemplate.Parse(File.ReadAllText(path), s_clock);
    }

    private static ChatTemplate LoadFromTokenizerConfig(string relativePath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedAssets.Require(relativePath)));
        return ChatTemplate.Parse(doc.RootElement.GetProperty("chat_template").GetString()!, s_clock);
    }

    [Fact]
    public void Phi3_mini_matches_hugging_face_output()
    {
        var template = LoadFromTokenizerConfig("assets/hf-tokenizers/phi-3-mini/tokenizer_config.json");
        string text = template.Render(
            [
                new("system", "System message"),
                new("user", "Hello, can you call some tools for me?"),
                new("assistant", "Sure, I can calculate the sum for you!"),
            ],
            addGenerationPrompt: true, bosToken: "<s>", eosToken: "<|endoftext|>");
        Assert.Equal(
            "<|system|>\nSystem message<|end|>\n<|user|>\nHello, can you call some tools for me?<|end|>\n<|assistant|>\nSure, I can calculate the sum for you!<|end|>\n<|assistant|>\n",
            text);
    }

    [Fact]
    public void Llama_3_2_writes_the_date_from_strftime_now_and_the_system_prompt()
    {
        var template = Load("assets/chat-templates/llamacpp/meta-llama-Llama-3.2-3B-Instruct.jinja");
        // bos_token, then the system header: no tools so no "Environment: ipython"; date_string is undefined, so
        // strftime_now("%d %b %Y") gives "09 Mar 2025"; the system content is trimmed and closed with <|eot_id|>.
        // messages[1:] then renders the user turn; add_generation_prompt opens the assistant header.
        string text = template.Render(
            [new("system", "You are a helpful assistant. "), new("user", "Hello!")],
            addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
            "Cutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n" +
            "You are a helpful assistant.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            text);
    }

    [Fact]
    public void Llama_3_2_puts_tools_in_the_first_user_turn_and_renders_a_tool_call()
    {
        var template = Load("assets/chat-templates/llamacpp/meta-llama-Llama-3.2-3B-Instruct.jinja");
        // tools given: "Environment: ipython" in the system header, whose message is "" (no system turn).
        // tools_in_user_message defaults to true: the first user turn carries the instructions and each tool as
        // tojson(indent=4) (Python json.dumps: "," + newline between items, ": " after keys).
        // The assistant turn with tool_calls prints {"name": ..., "parameters": <arguments | tojson>}.
        // The tool turn's content is a string, and a string 'is iterable', so it is printed through tojson (quoted).
        string toolJson =
            "{\n" +
            "    \"type\": \"function\",\n" +
            "    \"function\": {\n" +
            "        \"name\": \"get_weather\",\n" +
            "        \"parameters\": {\n" +
            "            \"type\": \"object\",\n" +
            "            \"properties\": {\n" +
            "                \"city\": {\n" +
            "                    \"type\": \"string\"\n" +
            "                }\n" +
            "            }\n" +
            "        }\n" +
            "    }\n" +
            "}";
        string text = template.Render(s_toolConversation, addGenerationPrompt: true, bosToken: "<|begin_of_text|>", tools: s_weatherTool);
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
            "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 09 Mar 2025\n\n<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\n" +
            "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" +
            "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n" +
            toolJson + "\n\n" +
            "What is the weather in Paris?<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>" +
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"21 degrees, sunny\"<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            text);
    }

    [Fact]
    public void Qwen2_5_adds_its_default_system_prompt()
    {
        var template = Load("assets/chat-templates/llamacpp/Qwen-Qwen2.5-7B-Instruct.jinja");
        // No tools and no system turn: the else branch writes the default system turn, then ChatML turns.
        string text = template.Render([new("user", "Hello!"), new("assistant", "Hi!"), new("user", "Bye")], addGenerationPrompt: true);
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n" +
            "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
            text);

        // A given system turn replaces the default.
        string withSystem = template.Render([new("system", "Be brief."), new("user", "Hello!")], addGenerationPrompt: false);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n", withSystem);
    }

    [Fact]
    public void Qwen2_5_renders_tools_tool_calls_and_tool_responses()
    {
        var template = Load("assets/chat-templates/llamacpp/Qwen-Qwen2.5-7B-Instruct.jinja");
        // With tools the system turn is the default prompt plus the tools block, each tool on its own line as
        // single-line tojson (", " and ": " separators). The assistant's content is None, so only <tool_call>
        // follows its header; the tool turn is wrapped in a user turn with <tool_response>.
        string text = template.Render(s_toolConversation, addGenerationPrompt: true, tools: s_weatherTool);
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n" +
            "You may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}\n" +
            "</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
            "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n" +
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n21 degrees, sunny\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\n",
            text);
    }

    [Fact]
    public void Phi3_5_skips_an_empty_system_turn_and_ends_with_eos_without_a_generation_prompt()
    {
        var template = Load("assets/chat-templates/llamacpp/microsoft-Phi-3.5-mini-instruct.jinja");
        // The newlines inside the string literals are real newlines in the file; there is no text between tags.
        string text = template.Render(
            [new("system", "You are a helpful assistant."), new("user", "Hello!"), new("assistant", "Hi!")],
            addGenerationPrompt: false, eosToken: "<|endoftext|>");
        Assert.Equal("<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi!<|end|>\n<|endoftext|>", text);

        string prompt = template.Render([new("system", ""), new("user", "Hello!")], addGenerationPrompt: true, eosToken: "<|endoftext|>");
        Assert.Equal("<|user|>\nHello!<|end|>\n<|assistant|>\n", prompt);
    }

    [Fact]
    public void Gemma_2_rejects_a_system_turn_and_renders_model_turns()
    {
        var template = Load("assets/chat-templates/llamacpp/google-gemma-2-2b-it.jinja");
        var ex = Assert.Throws<ChatTemplateException>(() => template.Render(
            [new("system", "Be brief."), new("user", "Hello!")], addGenerationPrompt: true, bosToken: "<bos>"));
        Assert.True(ex.RaisedByTemplate);
        Assert.Equal("System role not supported", ex.Message);

        var alternation = Assert.Throws<ChatTemplateException>(() => template.Render(
            [new("user", "Hello!"), new("user", "Again")], addGenerationPrompt: true, bosToken: "<bos>"));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", alternation.Message);

        // assistant becomes 'model'; content goes through | trim.
        string text = template.Render(
            [new("user", "  Hello!  "), new("assistant", "Hi!\n"), new("user", "How are you?")], addGenerationPrompt: true, bosToken: "<bos>");
        Assert.Equal(
            "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi!<end_of_turn>\n" +
            "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n",
            text);
    }

    [Fact]
    public void SmolLM3_unsloth_template_uses_the_system_turn_as_custom_instructions()
    {
        var template = Load("assets/chat-templates/llamacpp/HuggingFaceTB-SmolLM3-3B.jinja");
        // enable_thinking is undefined -> true -> "/think"; the system content (no /think markers) is rstripped into
        // the custom instructions. Every tag has '-' on both sides, so only the {{ }} strings reach the output.
        string text = template.Render(
            [new("system", "You are a helpful assistant."), new("user", "Hello!"), new("assistant", "Hi!"), new("user", "How are you?")],
            addGenerationPrompt: true);
        Assert.Equal(
            "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /think\n\n" +
            "## Custom Instructions\n\nYou are a helpful assistant.\n\n<|im_end|>\n" +
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n" +
            "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
            text);

        // enable_thinking=false -> "/no_think": the short default instructions, and an empty think block before
        // each assistant turn (whose leading newlines are lstripped).
        string noThink = template.Render(
            [new("user", "Hello!"), new("assistant", "\nHi!")], addGenerationPrompt: false,
            extraVariables: new Dictionary<string, object?> { ["enable_thinking"] = false });
        Assert.Equal(
            "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /no_think\n\n" +
            "## Custom Instructions\n\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face.\n\n<|im_end|>\n" +
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\nHi!<|im_end|>\n",
            noThink);
    }

    [Fact]
    public void SmolLM3_hugging_face_template_dates_the_header_and_lists_tools_as_python_dicts()
    {
        var template = Load("assets/hf-tokenizers/smollm3/chat_template.jinja");
        // "/no_think" in the system turn switches the mode and is removed from the instructions (then rstripped).
        // strftime_now("%d %B %Y") -> "09 March 2025". In this version the header's <|im_end|> is written only
        // inside the tools block, so without tools the first user turn follows the instructions directly.
        string text = template.Render([new("system", "You are a helpful assistant. /no_think"), new("user", "Hello!")], addGenerationPrompt: true);
        Assert.Equal(
            "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: 09 March 2025\nReasoning Mode: /no_think\n\n" +
            "## Custom Instructions\n\nYou are a helpful assistant.\n\n" +
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n",
            text);

        // With tools each one is printed with (tool | string), which is Python's repr of the dict.
        string withTools = template.Render([new("user", "Weather?")], addGenerationPrompt: true, tools: s_weatherTool);
        Assert.Equal(
            "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: 09 March 2025\nReasoning Mode: /think\n\n" +
            "## Custom Instructions\n\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an assistant involves thoroughly exploring questions through a systematic thinking process before providing the final precise and accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, backtracking, and iteration to develop well-considered thinking process. Please structure your response into two main sections: Thought and Solution using the specified format: <think> Thought section </think> Solution section. In the Thought section, detail your reasoning process in steps. Each step should include detailed considerations such as analysing questions, summarizing relevant findings, brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting previous steps. In the Solution section, based on various attempts, explorations, and reflections from the Thought section, systematically present the final solution that you deem correct. The Solution section should be logical, accurate, and concise and detail necessary steps needed to reach the conclusion.\n\n" +
            "### Tools\n\nYou may call one or more functions to assist with the user query.\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n" +
            "{'type': 'function', 'function': {'name': 'get_weather', 'parameters': {'type': 'object', 'properties': {'city': {'type': 'string'}}}}}\n" +
            "</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
            "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>\n\n<|im_end|>\n" +
            "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n",
            withTools);
    }
}
