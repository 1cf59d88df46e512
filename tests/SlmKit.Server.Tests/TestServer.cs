using System.ClientModel;
using System.Net.Http.Headers;
using System.Text;
using OpenAI;
using SlmKit.Formats;
using SlmKit.Tensors;
using SlmKit.Tests;
using SlmKit.Tests.Models;

namespace SlmKit.Server.Tests;

/// <summary>
/// The model the server tests use: stories260K from ../shared (a real SentencePiece vocabulary and story-like text)
/// when present, otherwise a random tiny Llama written with SlmKit's GGUF writer, so the tests never depend on it.
/// </summary>
internal static class TestModel
{
    private static readonly Lazy<string> s_path = new(Locate);

    public static string Path => s_path.Value;

    private static string Locate()
    {
        string shared = System.IO.Path.GetFullPath(System.IO.Path.Combine(SharedAssets.RepositoryRoot, "..", "shared", "assets", "llama2c", "stories260K", "stories260K.gguf"));
        if (File.Exists(shared))
            return shared;
        string folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "slmkit-server-tests");
        Directory.CreateDirectory(folder);
        string path = System.IO.Path.Combine(folder, $"random-{Environment.ProcessId}.gguf");
        // The synthetic vocabulary spends about a token per character (stories260K's real one packs several), so a chat
        // prompt that lists tools nearly fills a 512-token context; 4096 tokens leaves the tests the room they need, and
        // keeps an "endless" generation running long enough for a client to disconnect from it.
        var spec = new RandomLlamaSpec("server", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 128, Vocab: 600, Tied: true,
            RopeTheta: 10000f, Type: GgmlType.F32, Seed: 42, ContextLength: 4096);
        return new RandomLlama(spec).WriteGguf(path);
    }

    private static readonly Lazy<string> s_longContextPath = new(() =>
    {
        string folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "slmkit-server-tests");
        Directory.CreateDirectory(folder);
        // One KV head of 16 over 2 layers keeps a 65,536-token cache at 16 MB, while attention over a growing context makes
        // reaching that length take minutes: a generation on this model cannot end by filling its context during a test.
        var spec = new RandomLlamaSpec("server-long", Dim: 64, Layers: 2, Heads: 4, KvHeads: 1, HeadDim: 16, Ffn: 128, Vocab: 600, Tied: true,
            RopeTheta: 10000f, Type: GgmlType.F32, Seed: 43, ContextLength: LongContext);
        return new RandomLlama(spec).WriteGguf(System.IO.Path.Combine(folder, $"long-context-{Environment.ProcessId}.gguf"));
    });

    public const int LongContext = 65536;

    /// <summary>A random model whose context is long enough that an unbounded generation runs until it is cancelled.</summary>
    public static string LongContextPath => s_longContextPath.Value;
}

/// <summary>A running server on a free loopback port, with clients pointed at it.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private TestServer(SlmModel model, SlmServer server, string? apiKey)
    {
        Model = model;
        Server = server;
        ApiKey = apiKey;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null)
            Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public SlmModel Model { get; }
    public SlmServer Server { get; }
    public string? ApiKey { get; }
    public HttpClient Http { get; }

    public static async Task<TestServer> StartAsync(SlmServerOptions? options = null, string? modelPath = null)
    {
        options ??= new SlmServerOptions();
        var model = SlmModel.Load(modelPath ?? TestModel.Path, new SlmModelOptions { Threads = 1, ContextSize = options.ContextSize });
        try
        {
            var server = await SlmServer.StartAsync(model, options with { Port = 0, Host = "127.0.0.1" });
            return new TestServer(model, server, options.ApiKey);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The official OpenAI client, aimed at this server.</summary>
    public OpenAIClient OpenAI(int retries = 0) => new(new ApiKeyCredential(ApiKey ?? "no-key"), new OpenAIClientOptions
    {
        Endpoint = new Uri(Server.Address, "v1"),
        RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(retries),
        NetworkTimeout = TimeSpan.FromSeconds(60),
    });

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json, CancellationToken cancellationToken = default) =>
        Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Model.Dispose();
    }
}

/// <summary>One server shared by the tests of a class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestServer.StartAsync(new SlmServerOptions { Parallel = 4, MaxQueue = 256 });

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}
