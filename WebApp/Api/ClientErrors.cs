using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;

namespace MoTLab.WebApp.Api;

/// <summary>A request the dashboard cannot read is the client's mistake: a 4xx ProblemDetails saying what is wrong
/// (malformed JSON with its path, a value of the wrong type, a form past its limits, a body over its size), never a 500
/// nor an empty body.</summary>
public sealed class ClientErrors(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext c, Exception exception, CancellationToken ct)
    {
        var (status, detail) = exception switch
        {
            BadHttpRequestException { InnerException: JsonException json } => (StatusCodes.Status400BadRequest, $"the JSON body is not valid: {json.Message}"),
            BadHttpRequestException bad => (bad.StatusCode, bad.Message),
            InvalidDataException form => (StatusCodes.Status400BadRequest, $"the form cannot be read: {form.Message}"),
            Microsoft.AspNetCore.Antiforgery.AntiforgeryValidationException af => (StatusCodes.Status400BadRequest, $"the form cannot be read: {(af.InnerException ?? af).Message}"),
            JsonException json => (StatusCodes.Status400BadRequest, $"the JSON body is not valid: {json.Message}"),
            _ => (0, ""),
        };
        if (status == 0 || c.Response.HasStarted) return false;
        c.Response.StatusCode = status;
        return await problems.TryWriteAsync(new()
        {
            HttpContext = c, Exception = exception,
            ProblemDetails = { Status = status, Title = status == StatusCodes.Status413PayloadTooLarge ? "The request is too large" : "The request is not valid", Detail = detail },
        });
    }
}
