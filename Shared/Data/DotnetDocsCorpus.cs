using System.Runtime.InteropServices;
using System.Text;
using System.Xml.Linq;

namespace MoTLab.Shared.Data;

/// <summary>English prose that ships with every .NET SDK: the summary and remarks of the reference packs'
/// XML documentation. Cross-references are rendered as their simple names so sentences keep their nouns.</summary>
public static class DotnetDocsCorpus
{
    public static string Root()
    {
        var env = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(Path.Combine(env, "packs"))) return env;
        // <root>/shared/Microsoft.NETCore.App/<version>/
        var runtime = RuntimeEnvironment.GetRuntimeDirectory().TrimEnd('/');
        return Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
    }

    /// <summary>One XML file per assembly, newest pack version and target framework only (no duplicates).</summary>
    public static List<string> Files()
    {
        var packs = Path.Combine(Root(), "packs");
        if (!Directory.Exists(packs)) return [];
        var result = new List<string>();
        foreach (var pack in Directory.GetDirectories(packs, "*.Ref").Order())
        {
            var version = Directory.GetDirectories(pack).OrderBy(v => Version.TryParse(Path.GetFileName(v), out var x) ? x : new Version()).LastOrDefault();
            var refDir = version is null ? null : Path.Combine(version, "ref");
            if (refDir is null || !Directory.Exists(refDir)) continue;
            var tfm = Directory.GetDirectories(refDir).Order().LastOrDefault();
            if (tfm is not null) result.AddRange(Directory.GetFiles(tfm, "*.xml").Order());
        }
        return result;
    }

    /// <summary>Every member's text once. The packs repeat themselves: the ASP.NET pack ships copies of the runtime's
    /// docs, overloads share summaries. Kept, the repeats were more than half the text, and the held-out tail (the
    /// runtime pack's last files) was entirely text the model had trained on.</summary>
    public static IEnumerable<string> Documents(IEnumerable<string> files) => files.SelectMany(Extract).Distinct(StringComparer.Ordinal);

    /// <summary>The summary and remarks texts of one XML doc file, one document per member.</summary>
    public static IEnumerable<string> Extract(string file)
    {
        XDocument doc;
        try { doc = XDocument.Load(file); }
        catch (System.Xml.XmlException) { yield break; } // a malformed pack file is skipped, not fatal
        foreach (var member in doc.Descendants("member"))
        {
            var parts = member.Elements().Where(e => e.Name == "summary" || e.Name == "remarks")
                .Select(Render).Where(t => t.Length > 0).ToList();
            if (parts.Count > 0) yield return string.Join(" ", parts) + "\n";
        }
    }

    static string Render(XElement e)
    {
        var sb = new StringBuilder();
        Append(sb, e);
        return string.Join(' ', sb.ToString().Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries));
    }

    static void Append(StringBuilder sb, XNode node)
    {
        switch (node)
        {
            case XText t: sb.Append(t.Value); break;
            case XElement el when el.Name == "see" || el.Name == "seealso":
                var name = (string?)el.Attribute("cref") ?? (string?)el.Attribute("langword") ?? (string?)el.Attribute("href") ?? "";
                sb.Append(el.IsEmpty ? SimpleName(name) : el.Value);
                break;
            case XElement el when el.Name == "paramref" || el.Name == "typeparamref":
                sb.Append((string?)el.Attribute("name")); break;
            case XElement el:
                foreach (var child in el.Nodes()) Append(sb, child);
                if (el.Name == "para" || el.Name == "item") sb.Append(' ');
                break;
        }
    }

    /// <summary>"M:System.String.Join(System.String,System.String[])" → "String.Join"; "T:System.Span`1" → "Span".</summary>
    static string SimpleName(string cref)
    {
        var s = cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;
        int paren = s.IndexOf('('); if (paren >= 0) s = s[..paren];
        int tick = s.IndexOf('`'); if (tick >= 0) s = s[..tick];
        var parts = s.Split('.');
        return cref.StartsWith("M:") || cref.StartsWith("P:") || cref.StartsWith("F:") || cref.StartsWith("E:")
            ? string.Join('.', parts.TakeLast(2)) : parts[^1];
    }
}
