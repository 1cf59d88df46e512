using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SlmKit.Formats;

namespace SlmKit.Tokenizers;

public sealed partial class Tokenizer
{
    private static readonly string[] s_bosNames = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<｜begin▁of▁sentence｜>"];
    private static readonly string[] s_eosNames = ["</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<｜end▁of▁sentence｜>"];

    /// <summary>
    /// Loads a Hugging Face tokenizer folder: <c>tokenizer.json</c> (a BPE model: byte-level, or SentencePiece-style
    /// with byte fallback), plus <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c> and
    /// <c>chat_template.jinja</c> or <c>chat_template.json</c> when present (read through <see cref="TokenizerConfig"/>).
    /// </summary>
    /// <param name="folder">The folder holding <c>tokenizer.json</c>.</param>
    /// <exception cref="ModelFileException">A file is missing or malformed, or uses a model, normalizer or
    /// pre-tokenizer SlmKit does not support (Unigram and WordPiece models among them).</exception>
    public static Tokenizer FromHuggingFace(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        string path = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(path))
            throw new ModelFileException(path, "not found (a Hugging Face tokenizer folder needs tokenizer.json)");
        // The same strictness as every other JSON file read here (and as the tokenizers library's own parser): UTF-8
        // checked up front, malformed JSON reported with its line and position, no trailing commas.
        using (JsonDocument document = JsonFiles.LoadDocument(path))
        {
            try
            {
                return FromHuggingFaceJson(path, document.RootElement, folder);
            }
            catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
            {
                throw new ModelFileException(path, $"is malformed: {e.Message}", e);
            }
        }
    }

    private static Tokenizer FromHuggingFaceJson(string path, JsonElement root, string folder)
    {
        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
            throw new ModelFileException(path, "has no \"model\" object");
        string modelType = model.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : InferModelType(model);
        bool unigram = modelType == "Unigram";
        if (modelType != "BPE" && !unigram)
            throw new ModelFileException(path, $"model type '{modelType}' is not supported; SlmKit reads BPE tokenizers (byte-level or SentencePiece-style) and Unigram ones");

        var entries = new List<(string Text, int Id)>();
        var unigramScores = new List<float>();
        if (!model.TryGetProperty("vocab", out JsonElement vocab) || vocab.ValueKind != (unigram ? JsonValueKind.Array : JsonValueKind.Object))
            throw new ModelFileException(path, $"model.vocab is missing or not an {(unigram ? "array of [piece, score] pairs" : "object")}");
        if (unigram)
        {
            // Unigram: [piece, log probability] pairs, the id being the position.
            foreach (JsonElement pair in vocab.EnumerateArray())
            {
                if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2 || pair[0].ValueKind != JsonValueKind.String || pair[1].ValueKind != JsonValueKind.Number)
                    throw new ModelFileException(path, $"model.vocab entry {entries.Count} is not a [piece, score] pair");
                entries.Add((pair[0].GetString()!, entries.Count));
                unigramScores.Add((float)pair[1].GetDouble());
            }
        }
        else
        {
            foreach (JsonProperty p in vocab.EnumerateObject())
                entries.Add((p.Name, p.Value.GetInt32()));
        }

        var added = new List<(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool SingleWord, bool Normalized)>();
        if (root.TryGetProperty("added_tokens", out JsonElement addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement a in addedTokens.EnumerateArray())
            {
                added.Add((a.GetProperty("id").GetInt32(), a.GetProperty("content").GetString() ?? "",
                    Flag(a, "special"), Flag(a, "lstrip"), Flag(a, "rstrip"), Flag(a, "single_word"), Flag(a, "normalized", true)));
            }
        }

        int size = 0;
        foreach ((_, int id) in entries)
            size = Math.Max(size, id + 1);
        foreach (var a in added)
            size = Math.Max(size, a.Id + 1);
        if (size == 0)
            throw new ModelFileException(path, "the vocabulary is empty");
        if (entries.Exists(e => e.Id < 0) || added.Exists(a => a.Id < 0))
            throw new ModelFileException(path, "has a negative token id");

        var pieces = new string[size];
        Array.Fill(pieces, "");
        var attributes = new TokenAttributes[size];
        Array.Fill(attributes, TokenAttributes.Unused);
        bool byteFallback = Flag(model, "byte_fallback");
        foreach ((string text, int id) in entries)
        {
            pieces[id] = text;
            attributes[id] = byteFallback && text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>'
                ? TokenAttributes.Byte
                : TokenAttributes.Normal;
        }
        int? unk = null;
        if (unigram)
        {
            if (byteFallback)
                throw new ModelFileException(path, "a Unigram model with byte_fallback is not supported yet");
            if (model.TryGetProperty("unk_id", out JsonElement unkIndex) && unkIndex.ValueKind == JsonValueKind.Number)
            {
                unk = unkIndex.GetInt32();
                if ((uint)unk.Value >= (uint)size)
                    throw new ModelFileException(path, $"model.unk_id {unk} is outside the vocabulary");
                attributes[unk.Value] = TokenAttributes.Unknown;
            }
        }
        else if (model.TryGetProperty("unk_token", out JsonElement unkToken) && unkToken.ValueKind == JsonValueKind.String &&
            vocab.TryGetProperty(unkToken.GetString()!, out JsonElement unkId))
        {
            unk = unkId.GetInt32();
            attributes[unk.Value] = TokenAttributes.Unknown;
        }
        foreach (var a in added)
        {
            pieces[a.Id] = a.Content;
            TokenAttributes attr = a.Special ? TokenAttributes.Control : TokenAttributes.UserDefined;
            if (unk == a.Id)
                attr = TokenAttributes.Unknown;
            if (a.LStrip) attr |= TokenAttributes.LStrip;
            if (a.RStrip) attr |= TokenAttributes.RStrip;
            if (a.SingleWord) attr |= TokenAttributes.SingleWord;
            attributes[a.Id] = attr;
        }

        var merges = new Dictionary<string, int>(StringComparer.Ordinal);
        if (model.TryGetProperty("merges", out JsonElement mergeList) && mergeList.ValueKind == JsonValueKind.Array)
        {
            int rank = 0;
            foreach (JsonElement m in mergeList.EnumerateArray())
            {
                string key = m.ValueKind == JsonValueKind.Array
                    ? m[0].GetString() + " " + m[1].GetString()
                    : m.GetString() ?? throw new ModelFileException(path, "model.merges holds a non-string entry");
                merges.TryAdd(key, rank++);
            }
        }

        JsonElement normalizerJson = root.TryGetProperty("normalizer", out JsonElement nj) ? nj : default;
        JsonElement preJson = root.TryGetProperty("pre_tokenizer", out JsonElement pj) ? pj : default;
        JsonElement decoderJson = root.TryGetProperty("decoder", out JsonElement dj) ? dj : default;

        var normalizerSteps = new List<Func<string, string>>();
        var charsMaps = new List<PrecompiledCharsMap>();
        ParseNormalizer(path, normalizerJson, normalizerSteps, charsMaps);
        var patterns = new List<string>();
        bool byteLevel = false, splitOnWhitespace = false;
        if (unigram)
            splitOnWhitespace = UnigramSplitsOnWhitespace(path, preJson);
        else
            ParsePreTokenizer(path, preJson, patterns, normalizerSteps, ref byteLevel);
        byteLevel |= !unigram && HasType(decoderJson, "ByteLevel");
        TokenizerKind kind = unigram ? TokenizerKind.Unigram : byteLevel ? TokenizerKind.ByteLevelBpe : TokenizerKind.SentencePieceBpe;
        Normalizer? normalizer = normalizerSteps.Count > 0 ? new Normalizer(normalizerSteps) : null;

        // Special-token roles come from tokenizer_config.json / special_tokens_map.json when present.
        var config = TokenizerConfig.TryLoadFromFolder(folder);
        JsonElement specialMap = ReadOptionalJson(Path.Combine(folder, "special_tokens_map.json"));
        var lookup = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < size; i++)
            lookup.TryAdd(pieces[i], i);
        int? bos = RoleId(config?.BosToken, specialMap, "bos_token", lookup);
        int? eos = RoleId(config?.EosToken, specialMap, "eos_token", lookup);

        (int[] prefix, int[] suffix, _) = ParsePostProcessor(path, root, lookup);
        // transformers lets tokenizer_config.json's add_bos_token/add_eos_token rewrite the post-processor.
        prefix = ApplyConfigFlag(prefix, config?.AddBosToken, bos, atStart: true);
        suffix = ApplyConfigFlag(suffix, config?.AddEosToken, eos, atStart: false);
        bos ??= prefix.Length > 0 && s_bosNames.Contains(pieces[prefix[0]]) ? prefix[0] : FirstPresent(s_bosNames, lookup, added.Select(a => a.Id));
        eos ??= FirstPresent(s_eosNames, lookup, added.Select(a => a.Id));

        // The "default" template, else the first named one (a list without a "default" still has a usable template).
        string? template = config?.ChatTemplate ?? config?.ChatTemplates.Values.FirstOrDefault();
        string jinja = Path.Combine(folder, "chat_template.jinja");
        if (template is null && File.Exists(jinja))
            template = File.ReadAllText(jinja);

        bool stripLeadingSpace = kind != TokenizerKind.ByteLevelBpe && (HasStripDecoder(decoderJson) || HasType(decoderJson, "Metaspace"));
        float[]? scores = null;
        if (unigram)
        {
            scores = new float[size];
            unigramScores.CopyTo(scores);
        }
        int[] rawSplit = added.Where(a => !a.Normalized || normalizer is null).Select(a => a.Id).Distinct().ToArray();
        int[] normalizedSplit = added.Where(a => a.Normalized && normalizer is not null).Select(a => a.Id).Distinct().ToArray();

        return new Tokenizer(new TokenizerDefinition
        {
            Kind = kind,
            Pieces = pieces,
            Scores = scores,
            Attributes = attributes,
            MergeRanks = unigram ? null : merges,
            PreTokenizer = kind == TokenizerKind.ByteLevelBpe && patterns.Count > 0 ? new PreTokenizer(patterns) : null,
            Normalizer = normalizer,
            RawSplitIds = rawSplit,
            NormalizedSplitIds = normalizedSplit,
            UnicodeWhitespaceStrip = true,
            SpacesAreMetaspace = kind != TokenizerKind.ByteLevelBpe,
            UnigramSplitOnWhitespace = splitOnWhitespace,
            CharsMap = unigram && charsMaps.Count == 1 && normalizerSteps.Count == 1 ? charsMaps[0] : null,
            StripLeadingSpaceOnDecode = stripLeadingSpace,
            IgnoreMerges = Flag(model, "ignore_merges"),
            ByteFallback = byteFallback,
            UnkId = unk,
            BosId = bos,
            EosId = eos,
            PrefixIds = prefix,
            SuffixIds = suffix,
            EndOfGenerationIds = TokenizerDefinition.FindEndOfGenerationIds(pieces, eos),
            ChatTemplate = template,
        });
    }

    private static void ParseNormalizer(string path, JsonElement n, List<Func<string, string>> steps, List<PrecompiledCharsMap>? charsMaps = null)
    {
        if (n.ValueKind != JsonValueKind.Object)
            return;
        string type = n.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (JsonElement child in n.GetProperty("normalizers").EnumerateArray())
                    ParseNormalizer(path, child, steps, charsMaps);
                break;
            case "Prepend":
                steps.Add(Normalizer.Prepend(n.GetProperty("prepend").GetString() ?? ""));
                break;
            case "Replace":
                if (!n.GetProperty("pattern").TryGetProperty("String", out JsonElement literal))
                    throw new ModelFileException(path, "normalizer 'Replace' with a Regex pattern is not supported (only String patterns)");
                steps.Add(Normalizer.Replace(literal.GetString() ?? "", n.GetProperty("content").GetString() ?? ""));
                break;
            case "NFC": steps.Add(Normalizer.Unicode(NormalizationForm.FormC)); break;
            case "NFD": steps.Add(Normalizer.Unicode(NormalizationForm.FormD)); break;
            case "NFKC": steps.Add(Normalizer.Unicode(NormalizationForm.FormKC)); break;
            case "NFKD": steps.Add(Normalizer.Unicode(NormalizationForm.FormKD)); break;
            case "Lowercase": steps.Add(Normalizer.Lowercase()); break;
            case "Precompiled":
                // SentencePiece's compiled rules (T5); an empty map changes nothing.
                string? charsmap = n.TryGetProperty("precompiled_charsmap", out JsonElement cm) && cm.ValueKind == JsonValueKind.String ? cm.GetString() : null;
                if (!string.IsNullOrEmpty(charsmap))
                {
                    var map = new PrecompiledCharsMap(Convert.FromBase64String(charsmap), path);
                    steps.Add(map.Normalize);
                    charsMaps?.Add(map);
                }
                break;
            default:
                throw new ModelFileException(path, $"normalizer '{type}' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Precompiled)");
        }
    }

    private static void ParsePreTokenizer(string path, JsonElement p, List<string> patterns, List<Func<string, string>> normalizerSteps, ref bool byteLevel)
    {
        if (p.ValueKind != JsonValueKind.Object)
            return;
        string type = p.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (JsonElement child in p.GetProperty("pretokenizers").EnumerateArray())
                    ParsePreTokenizer(path, child, patterns, normalizerSteps, ref byteLevel);
                break;
            case "ByteLevel":
                byteLevel = true;
                if (Flag(p, "add_prefix_space"))
                    throw new ModelFileException(path, "pre-tokenizer 'ByteLevel' with add_prefix_space=true is not supported");
                if (Flag(p, "use_regex", true))
                    patterns.Add(PreTokenizer.Gpt2Pattern);
                break;
            case "Split":
                string behavior = p.TryGetProperty("behavior", out JsonElement b) ? b.GetString() ?? "" : "";
                if (behavior != "Isolated" || Flag(p, "invert"))
                    throw new ModelFileException(path, $"pre-tokenizer 'Split' with behavior '{behavior}'{(Flag(p, "invert") ? " and invert" : "")} is not supported (only Isolated)");
                JsonElement pattern = p.GetProperty("pattern");
                patterns.Add(pattern.TryGetProperty("Regex", out JsonElement regex)
                    ? regex.GetString() ?? ""
                    : Regex.Escape(pattern.GetProperty("String").GetString() ?? ""));
                break;
            case "Punctuation":
                // Hugging Face's punctuation: Unicode P* plus the ASCII symbols Rust counts as punctuation.
                bool contiguous = p.TryGetProperty("behavior", out JsonElement pb) && pb.GetString() == "Contiguous";
                patterns.Add(@"[\p{P}\$\+<=>\^~\|`]" + (contiguous ? "+" : ""));
                break;
            case "Digits":
                patterns.Add(Flag(p, "individual_digits") ? @"\p{N}" : @"\p{N}+");
                break;
            case "Metaspace":
                // Equivalent to the Prepend+Replace normalizer pair older Llama tokenizer.json files use.
                string replacement = p.TryGetProperty("replacement", out JsonElement r) ? r.GetString() ?? "▁" : "▁";
                string scheme = p.TryGetProperty("prepend_scheme", out JsonElement ps) ? ps.GetString() ?? "always"
                    : Flag(p, "add_prefix_space", true) ? "always" : "never";
                if (scheme != "never")
                    normalizerSteps.Add(Normalizer.Prepend(replacement));
                normalizerSteps.Add(Normalizer.Replace(" ", replacement));
                break;
            default:
                throw new ModelFileException(path, $"pre-tokenizer '{type}' is not supported (supported: ByteLevel, Split, Punctuation, Digits, Metaspace, Sequence)");
        }
    }

    private static (int[] Prefix, int[] Suffix, bool Found) ParsePostProcessor(string path, JsonElement root, Dictionary<string, int> lookup)
    {
        if (!root.TryGetProperty("post_processor", out JsonElement p) || p.ValueKind != JsonValueKind.Object)
            return ([], [], false);
        var prefix = new List<int>();
        var suffix = new List<int>();
        bool found = Collect(p);
        return (prefix.ToArray(), suffix.ToArray(), found);

        bool Collect(JsonElement e)
        {
            string type = e.GetProperty("type").GetString() ?? "";
            switch (type)
            {
                case "ByteLevel":
                    return false;
                case "Sequence":
                    bool any = false;
                    foreach (JsonElement child in e.GetProperty("processors").EnumerateArray())
                        any |= Collect(child);
                    return any;
                case "RobertaProcessing" or "BertProcessing":
                    prefix.Add(e.GetProperty("cls")[1].GetInt32());
                    suffix.Add(e.GetProperty("sep")[1].GetInt32());
                    return true;
                case "TemplateProcessing":
                    bool afterSequence = false;
                    JsonElement specials = e.GetProperty("special_tokens");
                    foreach (JsonElement item in e.GetProperty("single").EnumerateArray())
                    {
                        if (item.TryGetProperty("Sequence", out _))
                        {
                            afterSequence = true;
                            continue;
                        }
                        string name = item.GetProperty("SpecialToken").GetProperty("id").GetString() ?? "";
                        var ids = specials.TryGetProperty(name, out JsonElement s)
                            ? s.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()
                            : lookup.TryGetValue(name, out int id) ? [id] : throw new ModelFileException(path, $"post_processor names an unknown special token '{name}'");
                        (afterSequence ? suffix : prefix).AddRange(ids);
                    }
                    return true;
                default:
                    throw new ModelFileException(path, $"post_processor '{type}' is not supported (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)");
            }
        }
    }

    /// <summary>Older tokenizer.json files omit model.type; the shape of the model tells.</summary>
    private static string InferModelType(JsonElement model)
    {
        if (model.TryGetProperty("merges", out _))
            return "BPE";
        if (model.TryGetProperty("vocab", out JsonElement v) && v.ValueKind == JsonValueKind.Array)
            return "Unigram";
        return model.TryGetProperty("max_input_chars_per_word", out _) ? "WordPiece" : "(unknown)";
    }

    private static int[] ApplyConfigFlag(int[] ids, bool? add, int? id, bool atStart)
    {
        if (add is null || id is not int token)
            return ids;
        if (add.Value && !ids.Contains(token))
            return atStart ? [token, .. ids] : [.. ids, token];
        return add.Value ? ids : ids.Where(x => x != token).ToArray();
    }

    private static bool Flag(JsonElement e, string name, bool defaultValue = false) =>
        e.TryGetProperty(name, out JsonElement v) ? v.ValueKind == JsonValueKind.True || (v.ValueKind != JsonValueKind.False && defaultValue) : defaultValue;

    private static bool HasType(JsonElement e, string type)
    {
        if (e.ValueKind != JsonValueKind.Object)
            return false;
        if (e.TryGetProperty("type", out JsonElement t) && t.GetString() == type)
            return true;
        foreach (string list in (string[])["decoders", "pretokenizers", "processors"])
        {
            if (e.TryGetProperty(list, out JsonElement children) && children.ValueKind == JsonValueKind.Array &&
                children.EnumerateArray().Any(c => HasType(c, type)))
                return true;
        }
        return false;
    }

    /// <summary>
    /// A Unigram tokenizer's pre-tokenizer: Metaspace alone (the text split before each "▁"), or WhitespaceSplit then
    /// Metaspace (T5: each whitespace-separated word gets its "▁"); anything else is refused.
    /// </summary>
    private static bool UnigramSplitsOnWhitespace(string path, JsonElement pre)
    {
        string Type(JsonElement e) => e.TryGetProperty("type", out JsonElement t) ? t.GetString() ?? "" : "";
        if (pre.ValueKind == JsonValueKind.Object && Type(pre) == "Metaspace")
            return false;
        if (pre.ValueKind == JsonValueKind.Object && Type(pre) == "Sequence" && pre.TryGetProperty("pretokenizers", out JsonElement list)
            && list.GetArrayLength() == 2 && Type(list[0]) == "WhitespaceSplit" && Type(list[1]) == "Metaspace")
            return true;
        throw new ModelFileException(path, "a Unigram model's pre-tokenizer must be Metaspace, or WhitespaceSplit then Metaspace");
    }

    private static bool HasStripDecoder(JsonElement decoder)
    {
        if (decoder.ValueKind != JsonValueKind.Object)
            return false;
        if (decoder.TryGetProperty("type", out JsonElement t) && t.GetString() == "Strip")
            return decoder.TryGetProperty("start", out JsonElement s) && s.GetInt32() > 0;
        return decoder.TryGetProperty("decoders", out JsonElement children) && children.ValueKind == JsonValueKind.Array &&
            children.EnumerateArray().Any(HasStripDecoder);
    }

    private static JsonElement ReadOptionalJson(string path) => File.Exists(path) ? JsonFiles.Load(path) : default;

    /// <summary>The id of a special token named by tokenizer_config.json (<paramref name="configured"/>), else by special_tokens_map.json.</summary>
    private static int? RoleId(string? configured, JsonElement specialMap, string role, Dictionary<string, int> lookup)
    {
        if (configured is not null && lookup.TryGetValue(configured, out int id))
            return id;
        if (specialMap.ValueKind != JsonValueKind.Object || !specialMap.TryGetProperty(role, out JsonElement v))
            return null;
        string? text = v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out JsonElement c) => c.GetString(),
            _ => null,
        };
        return text is not null && lookup.TryGetValue(text, out id) ? id : null;
    }

    private static int? FirstPresent(string[] names, Dictionary<string, int> lookup, IEnumerable<int> addedIds)
    {
        var added = addedIds.ToHashSet();
        foreach (string name in names)
        {
            if (lookup.TryGetValue(name, out int id) && added.Contains(id))
                return id;
        }
        return null;
    }
}
