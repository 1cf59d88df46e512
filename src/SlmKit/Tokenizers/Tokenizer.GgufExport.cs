using SlmKit.Formats;

namespace SlmKit.Tokenizers;

public sealed partial class Tokenizer
{
    /// <summary>
    /// Writes this vocabulary as llama.cpp's <c>tokenizer.ggml.*</c> metadata, so a converted or trained model carries
    /// its tokenizer: SentencePiece-style BPE as model "llama" (pieces with ▁, scores, token types), byte-level BPE as
    /// model "gpt2" (pieces, merges in rank order, pre-tokenizer name), Unigram as model "t5" (pieces, scores, the
    /// precompiled normalization rules).
    /// </summary>
    public void WriteGgufMetadata(GgufWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        int n = _pieces.Length;
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            // llama2.c vocabularies store spaces literally; GGUF "llama" vocabularies always use ▁.
            tokens[i] = Kind == TokenizerKind.SentencePieceBpe && !_spacesAreMetaspace ? _pieces[i].Replace(' ', '\u2581') : _pieces[i];
            types[i] = GgufTokenType(_attributes[i]);
        }

        if (Kind == TokenizerKind.Unigram)
        {
            // convert_hf_to_gguf's T5 vocabulary: pieces and log probabilities, the compiled normalization rules, and
            // the whitespace handling as SentencePiece flags.
            if (_charsMap is null && _normalizer is not null)
                throw new SlmKitException("this Unigram vocabulary normalizes with more than SentencePiece's compiled rules, which GGUF cannot state");
            writer.Set("tokenizer.ggml.model", "t5");
            writer.Set("tokenizer.ggml.tokens", tokens);
            writer.Set("tokenizer.ggml.scores", (float[])_scores.Clone());
            writer.Set("tokenizer.ggml.add_space_prefix", true);
            writer.Set("tokenizer.ggml.remove_extra_whitespaces", _unigramSplitOnWhitespace);
            if (_charsMap is not null)
                writer.Set("tokenizer.ggml.precompiled_charsmap", _charsMap.Blob);
        }
        else if (Kind == TokenizerKind.SentencePieceBpe)
        {
            writer.Set("tokenizer.ggml.model", "llama");
            writer.Set("tokenizer.ggml.tokens", tokens);
            writer.Set("tokenizer.ggml.scores", SentencePieceScores());
        }
        else
        {
            writer.Set("tokenizer.ggml.model", "gpt2");
            writer.Set("tokenizer.ggml.pre", GgufPreTokenizerName());
            writer.Set("tokenizer.ggml.tokens", tokens);
            var merges = new string[_mergeRanks?.Count ?? 0];
            if (_mergeRanks is not null)
            {
                foreach (var (pair, rank) in _mergeRanks)
                    merges[rank] = pair;
            }
            if (Array.IndexOf(merges, null) >= 0)
                throw new SlmKitException("the merge ranks of this tokenizer have gaps; it cannot be written as a GGUF vocabulary");
            writer.Set("tokenizer.ggml.merges", merges);
        }
        writer.Set("tokenizer.ggml.token_type", types);
        if (BosId is int bos)
            writer.Set("tokenizer.ggml.bos_token_id", (uint)bos);
        if (EosId is int eos)
            writer.Set("tokenizer.ggml.eos_token_id", (uint)eos);
        if (_unkId is int unk)
            writer.Set("tokenizer.ggml.unknown_token_id", (uint)unk);
        writer.Set("tokenizer.ggml.add_bos_token", AddBos);
        writer.Set("tokenizer.ggml.add_eos_token", AddEos);
        if (ChatTemplate is not null)
            writer.Set("tokenizer.chat_template", ChatTemplate);
    }

    /// <summary>
    /// Scores as llama.cpp's SentencePiece merge wants them (higher merges first). A vocabulary from tokenizer.json has
    /// merge ranks instead: a merged piece scores minus its rank, so earlier merges still win.
    /// </summary>
    private float[] SentencePieceScores()
    {
        if (_mergeRanks is null)
            return (float[])_scores.Clone();
        var scores = new float[_pieces.Length];
        foreach (var (pair, rank) in _mergeRanks)
        {
            int space = pair.IndexOf(' ', StringComparison.Ordinal);
            string merged = string.Concat(pair.AsSpan(0, space), pair.AsSpan(space + 1));
            if (_pieceToId.TryGetValue(merged, out int id) && scores[id] == 0)
                scores[id] = -(rank + 1);
        }
        return scores;
    }

    /// <summary>
    /// The <c>tokenizer.ggml.pre</c> under which llama.cpp splits text as this tokenizer does, recognised from its regex
    /// chain in either spelling: transformers' (tokenizer.json: a Split regex with <c>(?i:'s|…)</c> before a ByteLevel
    /// step without regex, or Digits before a ByteLevel step with it) or llama.cpp's (<see cref="ByteLevelPreTokenizer"/>).
    /// Llama 3's chain is "llama-bpe" only with ignore_merges, which llama.cpp implies by that name. A chain without a
    /// name here is written as "default", llama.cpp's fallback. A vocabulary read from a GGUF keeps the name it was read
    /// under.
    /// </summary>
    private string GgufPreTokenizerName() => _ggufPreTokenizer ?? _preTokenizer?.Patterns switch
    {
        null or [PreTokenizer.Gpt2Pattern] => "gpt-2",
        [Llama3Pattern or Llama3HuggingFacePattern] => _ignoreMerges ? "llama-bpe" : "smaug-bpe",
        [Qwen2Pattern or Qwen2HuggingFacePattern] => "qwen2",
        [@"\p{N}", PreTokenizer.Gpt2Pattern] => "smollm",
        _ => "default",
    };

    // tokenizer.json's spelling of the Llama 3 and Qwen2 splits (case-insensitive contractions; Qwen2 splits digits singly).
    private const string Llama3HuggingFacePattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2HuggingFacePattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static int GgufTokenType(TokenAttributes attributes) =>
        (attributes & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unused | TokenAttributes.Byte)) switch
        {
            TokenAttributes.Unknown => 2,
            TokenAttributes.Control => 3,
            TokenAttributes.UserDefined => 4,
            TokenAttributes.Unused => 5,
            TokenAttributes.Byte => 6,
            _ => 1,
        };
}
