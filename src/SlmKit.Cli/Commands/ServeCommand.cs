using System.CommandLine;
using SlmKit.Server;

namespace SlmKit.Cli.Commands;

/// <summary><c>slm serve</c>: loads a model and runs the OpenAI-compatible server until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create(CliConsole console)
    {
        var defaults = new SlmServerOptions();
        var model = CommonOptions.Model();
        var tokenizer = CommonOptions.Tokenizer();
        var threads = CommonOptions.Threads();
        var mmap = CommonOptions.MemoryMap();
        var host = new Option<string>("--host") { Description = "Address to listen on (loopback by default)", DefaultValueFactory = _ => defaults.Host };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port)", DefaultValueFactory = _ => defaults.Port };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on /v1 and /metrics" };
        var parallel = new Option<int>("--parallel", "-np") { Description = "Sequences generated together (continuous batching slots)", DefaultValueFactory = _ => defaults.Parallel };
        var context = new Option<int?>("--ctx", "-c") { Description = "Context size per slot (default: the model's, at most 4096)" };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests that may wait for a slot; more get 429", DefaultValueFactory = _ => defaults.MaxQueue };
        var cors = new Option<string?>("--cors") { Description = "Allow browser calls from this origin ('*' for any); off by default" };
        var modelId = new Option<string?>("--model-id") { Description = "Model id reported by the API (default: the architecture)" };

        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API with a web playground at /")
        {
            model, tokenizer, host, port, apiKey, parallel, context, maxQueue, cors, modelId, threads, mmap,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = new SlmServerOptions
            {
                Host = result.GetValue(host)!,
                Port = result.GetValue(port),
                ApiKey = result.GetValue(apiKey),
                Parallel = result.GetValue(parallel),
                ContextSize = result.GetValue(context),
                MaxQueue = result.GetValue(maxQueue),
                CorsOrigin = result.GetValue(cors),
                ModelId = result.GetValue(modelId),
            };
            using var slm = SlmModel.Load(CommonOptions.ModelPath(result.GetValue(model)), CommonOptions.ModelOptions(result.GetValue(tokenizer), result.GetValue(threads), options.ContextSize, result.GetValue(mmap)));
            await using var server = await SlmServer.StartAsync(slm, options, cancellationToken).ConfigureAwait(false);
            console.Error.WriteLine($"slm serve: {server.ModelId} on {server.Address} ({options.Parallel} slots, playground at {server.Address}, Ctrl+C to stop)");
            await server.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
