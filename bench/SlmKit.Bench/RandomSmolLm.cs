using System.Text;
using SlmKit.Formats;
using SlmKit.Tensors;

namespace SlmKit.Bench;

/// <summary>The shape of a SmolLM-family model (Llama architecture, tied embeddings).</summary>
internal sealed record SmolLmShape(string Name, int Hidden, int Layers, int Heads, int KvHeads, int Ffn, int Vocab)
{
    public static readonly SmolLmShape Smol135M = new("SmolLM-135M", 576, 30, 9, 3, 1536, 49152);
    public static readonly SmolLmShape Smol360M = new("SmolLM-360M", 960, 32, 15, 5, 2560, 49152);
}

/// <summary>Writes a random-weight F16 GGUF with an exact SmolLM shape and a synthetic vocabulary llama.cpp accepts.</summary>
internal static class RandomSmolLm
{
    public static void Write(SmolLmShape s, string path, int seed = 1)
    {
        var random = new Random(seed);
        int headDim = s.Hidden / s.Heads;
        var writer = new GgufWriter();
        writer.Set("general.architecture", "llama");
        writer.Set("general.name", "slmkit-bench-" + s.Name);
        writer.Set("llama.context_length", 2048u);
        writer.Set("llama.embedding_length", (uint)s.Hidden);
        writer.Set("llama.block_count", (uint)s.Layers);
        writer.Set("llama.feed_forward_length", (uint)s.Ffn);
        writer.Set("llama.rope.dimension_count", (uint)headDim);
        writer.Set("llama.attention.head_count", (uint)s.Heads);
        writer.Set("llama.attention.head_count_kv", (uint)s.KvHeads);
        writer.Set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        writer.Set("llama.rope.freq_base", 10000f);
        writer.Set("general.file_type", 1u);
        var tokens = new string[s.Vocab];
        var scores = new float[s.Vocab];
        var types = new int[s.Vocab];
        tokens[0] = "<unk>"; types[0] = 2;
        tokens[1] = "<s>"; types[1] = 3;
        tokens[2] = "</s>"; types[2] = 3;
        for (int b = 0; b < 256; b++)
        {
            tokens[3 + b] = $"<0x{b:X2}>";
            types[3 + b] = 6;
        }
        const string letters = "etaoinshrdlucmfwypvbgkqjxz";
        for (int i = 259; i < s.Vocab; i++)
        {
            var piece = new StringBuilder("\u2581");
            for (int n = i - 259; ; n /= letters.Length)
            {
                piece.Append(letters[n % letters.Length]);
                if (n < letters.Length)
                    break;
            }
            tokens[i] = piece.ToString();
            scores[i] = -(i - 259);
            types[i] = 1;
        }
        writer.Set("tokenizer.ggml.model", "llama");
        writer.Set("tokenizer.ggml.tokens", tokens);
        writer.Set("tokenizer.ggml.scores", scores);
        writer.Set("tokenizer.ggml.token_type", types);
        writer.Set("tokenizer.ggml.bos_token_id", 1u);
        writer.Set("tokenizer.ggml.eos_token_id", 2u);

        float[] Uniform(long count, double scale, double offset = 0)
        {
            var v = new float[count];
            for (long i = 0; i < count; i++)
                v[i] = (float)(offset + (random.NextDouble() * 2 - 1) * scale);
            return v;
        }
        void Matrix(string name, int rows, int cols) =>
            writer.AddTensor(name, [rows, cols], Uniform((long)rows * cols, 1.5 / Math.Sqrt(cols)), GgmlType.F16);
        void Norm(string name) => writer.AddTensor(name, [s.Hidden], Uniform(s.Hidden, 0.2, 1.0));

        writer.AddTensor("token_embd.weight", [s.Vocab, s.Hidden], Uniform((long)s.Vocab * s.Hidden, 1.0), GgmlType.F16);
        int kv = s.KvHeads * headDim;
        for (int i = 0; i < s.Layers; i++)
        {
            Norm($"blk.{i}.attn_norm.weight");
            Matrix($"blk.{i}.attn_q.weight", s.Hidden, s.Hidden);
            Matrix($"blk.{i}.attn_k.weight", kv, s.Hidden);
            Matrix($"blk.{i}.attn_v.weight", kv, s.Hidden);
            Matrix($"blk.{i}.attn_output.weight", s.Hidden, s.Hidden);
            Norm($"blk.{i}.ffn_norm.weight");
            Matrix($"blk.{i}.ffn_gate.weight", s.Ffn, s.Hidden);
            Matrix($"blk.{i}.ffn_up.weight", s.Ffn, s.Hidden);
            Matrix($"blk.{i}.ffn_down.weight", s.Hidden, s.Ffn);
        }
        Norm("output_norm.weight");
        writer.Write(path);
    }
}
