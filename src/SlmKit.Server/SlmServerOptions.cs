namespace SlmKit.Server;

/// <summary>How <c>slm serve</c> listens and what it allows.</summary>
public sealed record SlmServerOptions
{
    /// <summary>Address to listen on; loopback by default so nothing outside the machine can reach the model.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see <see cref="SlmServer.Address"/>).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every /v1 and /metrics request needs <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Sequences generated together (continuous-batching slots).</summary>
    public int Parallel { get; init; } = 4;

    /// <summary>Requests that may wait for a slot before further ones get 429.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>Positions per slot; null uses the model's context size.</summary>
    public int? ContextSize { get; init; }

    /// <summary>Largest request body accepted; larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Origin allowed to call the API from a browser (CORS); null: CORS is off. "*" allows any origin.</summary>
    public string? CorsOrigin { get; init; }

    /// <summary>The model id the API reports; null uses the model file's name.</summary>
    public string? ModelId { get; init; }
}
