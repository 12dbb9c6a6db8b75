namespace MoTLab.Shared;

/// <summary>The folders a dashboard's runs may read corpora from. A path counts as inside only once every link
/// along it is followed: a link inside a root that points out of it leads outside.</summary>
public static class DataRoots
{
    /// <summary>The path with every link on every existing prefix followed (the real path, as far as it exists).</summary>
    public static string Resolve(string path)
    {
        var current = "/";
        foreach (var part in Path.GetFullPath(path).Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            var info = new FileInfo(current);
            if (info.Exists || Directory.Exists(current))
            {
                var target = info.Exists ? info.ResolveLinkTarget(true) : new DirectoryInfo(current).ResolveLinkTarget(true);
                if (target is not null) current = target.FullName;
            }
        }
        return Path.GetFullPath(current);
    }

    /// <summary>The roots as real paths, resolved once for the many checks of one corpus.</summary>
    public static IReadOnlyList<string> ResolveAll(IEnumerable<string> roots) => [.. roots.Select(Resolve)];

    /// <summary>Whether the resolved <paramref name="realPath"/> lies in one of the resolved <paramref name="realRoots"/>
    /// (<see cref="ResolveAll"/>).</summary>
    public static bool Contains(IEnumerable<string> realRoots, string realPath) =>
        realRoots.Any(root => realPath == root || realPath.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal));
}
