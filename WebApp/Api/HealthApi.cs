using Microsoft.AspNetCore.Http.HttpResults;
using MoTLab.WebApp.Runs;

namespace MoTLab.WebApp.Api;

/// <summary>The dashboard's own vital signs: queues that must drain, memory that must stay flat under load.</summary>
public static class HealthApi
{
    public sealed record Health(string Status, int TelemetryQueue, long HubSendsInFlight, long HubEventsDropped, int PageSubscribers,
        double GcHeapMb, double WorkingSetMb, double UptimeS);

    public static RouteGroupBuilder MapHealth(this RouteGroupBuilder api)
    {
        api.MapGet("/health", Read);
        return api;
    }

    static Ok<Health> Read(TelemetryWriter writer, RunEvents events)
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return TypedResults.Ok(new Health("ok", writer.QueueLength, events.HubSendsInFlight, events.HubEventsDropped, events.Subscribers,
            GC.GetTotalMemory(false) / 1048576.0, self.WorkingSet64 / 1048576.0, (DateTime.Now - self.StartTime).TotalSeconds));
    }
}
