using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SlmKit.Server;

/// <summary>
/// The OpenAI-compatible server: Kestrel with minimal-API endpoints over one loaded model.
/// <code>
/// using var model = SlmModel.Load("model.gguf");
/// await using var server = await SlmServer.StartAsync(model, new SlmServerOptions { Port = 8080 });
/// await server.WaitForShutdownAsync();
/// </code>
/// </summary>
public sealed class SlmServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ModelService _service;

    private SlmServer(WebApplication app, ModelService service, Uri address)
    {
        _app = app;
        _service = service;
        Address = address;
    }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:8080/ (with the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>The model id the API reports.</summary>
    public string ModelId => _service.ModelId;

    /// <summary>Starts listening. The caller keeps ownership of <paramref name="model"/> and disposes it after the server.</summary>
    /// <exception cref="SlmKitException">A bad option (slots, queue, context).</exception>
    public static async Task<SlmServer> StartAsync(SlmModel model, SlmServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Port is < 0 or > 65535)
            throw new SlmKitException($"port must be in 0..65535 (got {options.Port})");
        if (options.MaxRequestBodyBytes < 1)
            throw new SlmKitException($"the body size limit must be positive (got {options.MaxRequestBodyBytes})");

        if (options.Host != "localhost" && !IPAddress.TryParse(options.Host, out _))
            throw new SlmKitException($"host must be an IP address or localhost (got '{options.Host}')");

        var service = new ModelService(model, options, options.ModelId ?? DefaultModelId(model));
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
                kestrel.AddServerHeader = false;
                if (options.Host is "localhost")
                    kestrel.ListenLocalhost(options.Port);
                else
                    kestrel.Listen(IPAddress.Parse(options.Host), options.Port);
            });
            var app = builder.Build();
            Configure(app, service);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            string url = app.Urls.First();
            return new SlmServer(app, service, new Uri(url.EndsWith('/') ? url : url + "/"));
        }
        catch
        {
            service.Dispose();
            throw;
        }
    }

    /// <summary>Completes when the server stops (Ctrl+C, SIGTERM, or <paramref name="cancellationToken"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _service.Dispose();
    }

    private static string DefaultModelId(SlmModel model) => model.Info.Architecture;

    private static void Configure(WebApplication app, ModelService service)
    {
        app.Use((context, next) => ServeGuardedAsync(context, next, service));

        app.MapGet("/", ServePlaygroundAsync);
        app.MapGet("/health", context => HttpIo.WriteJsonAsync(context, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteEndObject();
        }));
        app.MapGet("/metrics", context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return context.Response.WriteAsync(service.Metrics.Render(service.Scheduler.GetMetrics()), context.RequestAborted);
        });
        app.MapGet("/v1/models", context => HttpIo.WriteJsonAsync(context, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            WriteModel(w, service);
            w.WriteEndArray();
            w.WriteEndObject();
        }));
        app.MapGet("/v1/models/{id}", context =>
        {
            string? id = context.Request.RouteValues["id"] as string;
            if (id != service.ModelId)
                throw new ApiException(404, $"the model '{id}' does not exist; this server serves '{service.ModelId}'", "invalid_request_error", "model", "model_not_found");
            return HttpIo.WriteJsonAsync(context, 200, w => WriteModel(w, service));
        });
        app.MapPost("/v1/chat/completions", context => ChatCompletionsEndpoint.HandleAsync(context, service));
        app.MapPost("/v1/completions", context => CompletionsEndpoint.HandleAsync(context, service));
        app.MapPost("/v1/embeddings", context => EmbeddingsEndpoint.HandleAsync(context, service));
        app.MapFallback(context => throw new ApiException(404, $"no endpoint {context.Request.Method} {context.Request.Path}", "invalid_request_error", null, "unknown_url"));
    }

    private static void WriteModel(System.Text.Json.Utf8JsonWriter w, ModelService service)
    {
        w.WriteStartObject();
        w.WriteString("id", service.ModelId);
        w.WriteString("object", "model");
        w.WriteNumber("created", service.Created);
        w.WriteString("owned_by", "slmkit");
        w.WriteEndObject();
    }

    /// <summary>
    /// Around every request: CORS (only with --cors), the API key on /v1 and /metrics, counting, and turning refusals into
    /// OpenAI-format errors. A client that goes away mid-request is not an error.
    /// </summary>
    private static async Task ServeGuardedAsync(HttpContext context, RequestDelegate next, ModelService service)
    {
        var options = service.Options;
        string endpoint = EndpointLabel(context.Request.Path);
        service.Metrics.Started();
        try
        {
            if (options.CorsOrigin is { } allowed && context.Request.Headers.Origin is { Count: > 0 } origin
                && (allowed == "*" || string.Equals(origin.ToString(), allowed, StringComparison.OrdinalIgnoreCase)))
            {
                context.Response.Headers.AccessControlAllowOrigin = allowed == "*" ? "*" : origin.ToString();
                context.Response.Headers.Vary = "Origin";
                if (HttpMethods.IsOptions(context.Request.Method))
                {
                    context.Response.Headers.AccessControlAllowMethods = "GET, POST, OPTIONS";
                    context.Response.Headers.AccessControlAllowHeaders = "Authorization, Content-Type";
                    context.Response.Headers.AccessControlMaxAge = "600";
                    context.Response.StatusCode = 204;
                    return;
                }
            }

            if (options.ApiKey is { } key && (context.Request.Path.StartsWithSegments("/v1") || context.Request.Path.StartsWithSegments("/metrics")))
                CheckKey(context, key);

            await next(context).ConfigureAwait(false);
        }
        catch (ApiException e)
        {
            await TryWriteErrorAsync(context, e).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            var error = e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? HttpIo.TooLarge(options.MaxRequestBodyBytes)
                : new ApiException(e.StatusCode, e.Message, "invalid_request_error", "body", null);
            await TryWriteErrorAsync(context, error).ConfigureAwait(false);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The client went away; its generation was cancelled with the request.
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"slm serve: internal error on {context.Request.Method} {context.Request.Path}: {e}");
            await TryWriteErrorAsync(context, new ApiException(500, "internal server error", "server_error", null, null)).ConfigureAwait(false);
        }
        finally
        {
            service.Metrics.Finished(endpoint, context.Response.StatusCode);
        }
    }

    private static void CheckKey(HttpContext context, string key)
    {
        string header = context.Request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
            throw new ApiException(401, "missing API key: send 'Authorization: Bearer KEY'", "invalid_request_error", null, "invalid_api_key");
        byte[] given = Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim());
        byte[] expected = Encoding.UTF8.GetBytes(key);
        if (!CryptographicOperations.FixedTimeEquals(given, expected))
            throw new ApiException(401, "incorrect API key", "invalid_request_error", null, "invalid_api_key");
    }

    private static async Task TryWriteErrorAsync(HttpContext context, ApiException error)
    {
        if (context.Response.HasStarted)
            return;
        context.Response.Clear();
        try
        {
            await HttpIo.WriteErrorAsync(context, error).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
    }

    private static string EndpointLabel(PathString path) => path.Value switch
    {
        "/" or "/health" or "/metrics" or "/v1/models" or "/v1/chat/completions" or "/v1/completions" or "/v1/embeddings" => path.Value,
        _ when path.StartsWithSegments("/v1/models") => "/v1/models/{id}",
        _ => "other",
    };

    private static async Task ServePlaygroundAsync(HttpContext context)
    {
        await using var stream = typeof(SlmServer).Assembly.GetManifestResourceStream("SlmKit.Server.Playground.html")
            ?? throw new InvalidOperationException("the playground page is missing from the assembly");
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        await stream.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }
}
