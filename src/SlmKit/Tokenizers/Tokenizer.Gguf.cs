using SlmKit.Formats;
namespace SlmKit.Tokenizers;

public sealed partial class Tokenizer
{
    // Pre-tokenizer regexes llama.cpp (src/llama-vocab.cpp) selects by tokenizer.ggml.pre.
    private const string Llama3Pattern =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Pattern =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Gpt2NoTrailingPattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    private const string Gpt4oPattern =
        @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string TekkenPattern =
        @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // Greek Extended and Letterlike ranges are escaped: several of their characters are NFC singletons that editors
    // silently replace (U+1FD3 → U+0390 and so on), which would corrupt the ranges.
    private const string DeepSeekLlmLetters =
        @"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚ\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213Fⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

    // Texts llama.cpp promotes to control tokens (end-of-turn and fill-in-the-middle markers).
    private static readonly HashSet<string> s_controlLookingTexts = new(StringComparer.Ordinal)
    {
        "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>",
        "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>",
        "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
        "<reponame>", "<|file_sep|>",
    };

    private static readonly HashSet<string> s_fimEndOfGenerationTexts = new(StringComparer.Ordinal)
    {
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
        "<reponame>", "<|file_sep|>",
    };

    /// <summary>
    /// Builds the tokenizer stored in a GGUF file's <c>tokenizer.ggml.*</c> metadata ("llama" = SentencePiece BPE,
    /// "gpt2" = byte-level BPE with the pre-tokenizer named by <c>tokenizer.ggml.pre</c>), applying llama.cpp's rules.
    /// </summary>
    /// <param name="metadata">The open GGUF (a vocab-only file works too); it may be disposed afterwards.</param>
    public static Tokenizer FromGguf(GgufFile metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string source = metadata.SourcePath;
        string model = metadata.GetString("tokenizer.ggml.model")
            ?? throw new ModelFileException(source, "has no tokenizer: metadata key tokenizer.ggml.model is missing");
        string[] tokens = metadata.GetStringArray("tokenizer.ggml.tokens")
            ?? throw new ModelFileException(source, "tokenizer.ggml.tokens (string array) is missing");
        int n = tokens.Length;
        if (n == 0)
            throw new ModelFileException(source, "tokenizer.ggml.tokens is empty");

        float[]? scores = metadata.GetFloatArray("tokenizer.ggml.scores");
        if (scores is not null && scores.Length < n)
            throw new ModelFileException(source, $"tokenizer.ggml.scores has {scores.Length} entries, expected {n}");
        int[]? types = metadata.GetInt32Array("tokenizer.ggml.token_type");
        if (types is not null && types.Length < n)
            throw new ModelFileException(source, $"tokenizer.ggml.token_type has {types.Length} entries, expected {n}");

        var attributes = new TokenAttributes[n];
        for (int i = 0; i < n; i++)
        {
            attributes[i] = (types?[i] ?? 1) switch
            {
                1 => TokenAttributes.Normal,
                2 => TokenAttributes.Unknown,
                3 => TokenAttributes.Control,
                4 => TokenAttributes.UserDefined,
                5 => TokenAttributes.Unused,
                6 => TokenAttributes.Byte,
                _ => TokenAttributes.None,
            };
        }

        TokenizerKind kind;
        int? bos, eos, unk;
        bool addBos, addEos = false;
        bool addSpacePrefix = false;
        bool ignoreMerges = false;
        PreTokenizer? preTokenizer = null;
        Dictionary<string, int>? merges = null;
        PrecompiledCharsMap? charsMap = null;
        bool splitOnWhitespace = false;
        switch (model)
        {
            case "llama":
                kind = TokenizerKind.SentencePieceBpe;
                (bos, eos, unk) = (1, 2, 0);
                addBos = true;
                addSpacePrefix = metadata.GetBool("tokenizer.ggml.add_space_prefix") ?? true;
                break;
            case "gpt2":
                kind = TokenizerKind.ByteLevelBpe;
                (bos, eos, unk) = (11, 11, null);
                addBos = false;
                string[] mergeList = metadata.GetStringArray("tokenizer.ggml.merges")
                    ?? throw new ModelFileException(source, "tokenizer.ggml.merges (string array) is missing for a 'gpt2' tokenizer");
                merges = new Dictionary<string, int>(mergeList.Length, StringComparer.Ordinal);
                for (int i = 0; i < mergeList.Length; i++)
                    merges.TryAdd(mergeList[i], i);
                string pre = metadata.GetString("tokenizer.ggml.pre") ?? "default";
                (string[] patterns, ignoreMerges, bool preAddsBos, bool noBos) = ByteLevelPreTokenizer(pre)
                    ?? throw new ModelFileException(source, $"tokenizer.ggml.pre '{pre}' is not supported");
                preTokenizer = new PreTokenizer(patterns, nonAsciiWhitespaceAsVerticalTab: true);
                addBos |= preAddsBos;
                if (noBos)
                    bos = null;
                break;
            case "bert":
                throw new ModelFileException(source, "tokenizer.ggml.model 'bert' (WordPiece) is not supported; SlmKit reads 'llama' (SentencePiece BPE), 'gpt2' (byte-level BPE) and 't5' (Unigram)");
            case "t5":
                // llama.cpp's defaults for a T5 vocabulary: no BOS, EOS </s> (1) appended, <unk> 2.
                kind = TokenizerKind.Unigram;
                (bos, eos, unk) = (null, 1, 2);
                addBos = false;
                addEos = true;
                if (scores is null)
                    throw new ModelFileException(source, "tokenizer.ggml.scores is missing for a 't5' (Unigram) tokenizer");
                if (metadata.GetBool("tokenizer.ggml.add_space_prefix") == false)
                    throw new ModelFileException(source, "a 't5' tokenizer without add_space_prefix is not supported yet");
                if (metadata.Metadata.GetValueOrDefault("tokenizer.ggml.precompiled_charsmap") is GgufArray { Values: byte[] blob } && blob.Length > 0)
                    charsMap = new PrecompiledCharsMap(blob, source);
                splitOnWhitespace = metadata.GetBool("tokenizer.ggml.remove_extra_whitespaces") ?? false;
                break;
            default:
                throw new ModelFileException(source, $"tokenizer.ggml.model '{model}' is not supported; SlmKit reads 'llama' (SentencePiece BPE), 'gpt2' (byte-level BPE) and 't5' (Unigram)");
        }

        if (bos >= n) bos = null;
        if (eos >= n) eos = null;
        if (unk >= n) unk = null;
        bos = SpecialId(metadata, "tokenizer.ggml.bos_token_id", n) ?? bos;
        eos = SpecialId(metadata, "tokenizer.ggml.eos_token_id", n) ?? eos;
        unk = SpecialId(metadata, "tokenizer.ggml.unknown_token_id", n) ?? unk;
        int? eot = SpecialId(metadata, "tokenizer.ggml.eot_token_id", n);
        int? eom = SpecialId(metadata, "tokenizer.ggml.eom_token_id", n);
        addBos = metadata.GetBool("tokenizer.ggml.add_bos_token") ?? addBos;
        addEos = metadata.GetBool("tokenizer.ggml.add_eos_token") ?? addEos;
        if (addBos && bos is null)
            throw new ModelFileException(source, "tokenizer.ggml.add_bos_token is true, but there is no BOS token");
        if (addEos && eos is null)
            throw new ModelFileException(source, "tokenizer.ggml.add_eos_token is true, but there is no EOS token");

        // llama.cpp treats end-of-turn and fill-in-the-middle markers as control tokens whatever the file says.
        var fimEog = new List<int?>();
        for (int i = 0; i < n; i++)
        {
            bool endOfTurn = TokenizerDefinition.IsEndOfTurnText(tokens[i]);
            if (endOfTurn || s_controlLookingTexts.Contains(tokens[i]))
                attributes[i] |= TokenAttributes.Control;
            if (s_fimEndOfGenerationTexts.Contains(tokens[i]))
                fimEog.Add(i);
        }
        int[] splitIds = Enumerable.Range(0, n)
            .Where(i => (attributes[i] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
            .ToArray();

        // Per-model attribute overrides llama.cpp applies by name (Phi-3's chat markers eat the whitespace after them).
        string name = (metadata.GetString("general.name") ?? "").ToLowerInvariant();
        if (name.Contains("phi-3", StringComparison.Ordinal) || name.Contains("phi3", StringComparison.Ordinal))
        {
            foreach (int id in splitIds)
                attributes[id] |= TokenAttributes.RStrip;
            for (int i = 0; i < n; i++)
            {
                if (tokens[i] == "</s>")
                    attributes[i] |= TokenAttributes.RStrip;
                else if (tokens[i] is "<unk>" or "<s>" or "<|endoftext|>")
                    attributes[i] &= ~TokenAttributes.RStrip;
            }
        }

        fimEog.Add(eot);
        fimEog.Add(eom);
        return new Tokenizer(new TokenizerDefinition
        {
            Kind = kind,
            Pieces = tokens,
            Scores = scores,
            Attributes = attributes,
            MergeRanks = merges,
            PreTokenizer = preTokenizer,
            GgufPreTokenizer = kind == TokenizerKind.ByteLevelBpe ? metadata.GetString("tokenizer.ggml.pre") ?? "default" : null,
            RawSplitIds = splitIds,
            // llama.cpp's Unigram rule: the longest matching normalization prefix first.
            Normalizer = charsMap is not null ? new Normalizer([charsMap.NormalizeLongestPrefix]) : null,
            CharsMap = charsMap,
            UnigramSplitOnWhitespace = splitOnWhitespace,
            AddSpacePrefix = addSpacePrefix,
            EscapeSpaces = kind == TokenizerKind.SentencePieceBpe,
            SpacesAreMetaspace = kind is TokenizerKind.SentencePieceBpe or TokenizerKind.Unigram,
            StripLeadingSpaceOnDecode = addSpacePrefix || kind == TokenizerKind.Unigram,
            IgnoreMerges = ignoreMerges,
            ByteFallback = kind == TokenizerKind.SentencePieceBpe,
            UnkId = unk,
            BosId = bos,
            EosId = eos,
            PrefixIds = addBos && bos is int b ? [b] : [],
            SuffixIds = addEos && eos is int e ? [e] : [],
            EndOfGenerationIds = TokenizerDefinition.FindEndOfGenerationIds(tokens, eos, fimEog.ToArray()),
            ChatTemplate = metadata.GetString("tokenizer.chat_template"),
        });
    }

    private static int? SpecialId(GgufFile metadata, string key, int vocabSize)
    {
        long? value = metadata.GetInteger(key);
        // Out-of-range ids (e.g. 0xFFFFFFFF for "none") keep the default, as in llama.cpp.
        return value is long v && v >= 0 && v < vocabSize ? (int)v : null;
    }

    /// <summary>The regex chain and flags llama.cpp uses for a <c>tokenizer.ggml.pre</c> value, or null if unknown.</summary>
    private static (string[] Patterns, bool IgnoreMerges, bool AddBos, bool NoBos)? ByteLevelPreTokenizer(string pre)
    {
        switch (pre)
        {
            case "default":
                return ([@"[\p{P}\$\+<=>\^~\|]+", Gpt2NoTrailingPattern, @"\p{N}+", "[0-9][0-9][0-9]"], false, false, false);
            case "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2":
                return ([Llama3Pattern], true, true, false);
            case "dbrx" or "smaug-bpe":
                return ([Llama3Pattern], false, false, false);
            case "chatglm-bpe" or "glm4":
                return ([Llama3Pattern], false, false, true);
            case "deepseek-llm":
                return ([@"[\r\n]", DeepSeekLlmLetters, @"\s?[!-/:-~！-／：-～‘-‟　-。]+", @"\s+$", "[一-龥ࠀ-一가-퟿]+", @"\p{N}+"], false, false, false);
            case "deepseek-coder":
                return ([@"[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", @"\p{N}"], false, false, false);
            case "deepseek-v3":
                return ([@"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                    @"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"], false, false, false);
            case "falcon":
                return ([@"[\p{P}\$\+<=>\^~\|`]+", Gpt2NoTrailingPattern, "[0-9][0-9][0-9]"], false, false, false);
            case "starcoder" or "refact" or "command-r" or "smollm" or "codeshell" or "exaone" or "minerva-7b":
                return ([@"\p{N}", Gpt2NoTrailingPattern], false, false, false);
            case "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "mpt"
                or "olmo" or "jais" or "trillion" or "granite-docling" or "exaone4" or "roberta-bpe" or "jina-v1-en" or "jina-v2-code":
                return ([Gpt2NoTrailingPattern], false, false, false);
            case "qwen2" or "deepseek-r1-qwen" or "stablelm2" or "hunyuan" or "megrez":
                return ([Qwen2Pattern], false, false, false);
            case "tekken":
                return ([TekkenPattern], true, true, false);
            case "gpt-4o" or "llama4":
                return ([Gpt4oPattern], false, false, false);
            case "poro-chat" or "bloom" or "gpt3-finnish":
                return ([@" ?[^(\s|.,!?…。，、।۔،)]+"], false, false, false);
            case "seed-coder":
                return ([@"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"], false, false, false);
            case "bailingmoe" or "bailingmoe2" or "llada-moe":
                return ([@"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"], false, false, false);
            default:
                return null;
        }
    }
}
