namespace SlmKit.Server;

/// <summary>A request the server refuses, written as OpenAI's <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
public sealed class ApiException : Exception
{
    public ApiException(int status, string message, string type, string? param = null, string? code = null) : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    public int Status { get; }
    public string Type { get; }
    public string? Param { get; }
    public string? Code { get; }

    /// <summary>Seconds to wait before retrying (429), sent as Retry-After.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>400 naming the field at fault.</summary>
    public static ApiException BadField(string param, string problem) =>
        new(400, $"{param}: {problem}", "invalid_request_error", param, "invalid_value");

    public static ApiException BadRequest(string message, string? param = null, string? code = null) =>
        new(400, message, "invalid_request_error", param, code);
}
