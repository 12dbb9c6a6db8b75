# MoTLab: dashboard + training worker in one image. CPU by default; TORCH_BACKEND=cuda builds against
# TorchSharp-cuda-linux (run with the NVIDIA container toolkit, --gpus all).
ARG TORCH_BACKEND=cpu

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TORCH_BACKEND
WORKDIR /src
COPY . .
# the training worker is published into worker/ beside the dashboard (worker/MoTLab.Training.dll), which launches it per run
RUN dotnet publish WebApp -c Release -o /app/web -p:TorchBackend=${TORCH_BACKEND}

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# the SDK's reference-pack XML docs are the built-in English prose corpus (dotnet-docs)
COPY --from=build /usr/share/dotnet/packs /usr/share/dotnet/packs
COPY --from=build /app /app
ENV MOTLAB_CACHE=/data/cache \
    MoTLab__DataFolder=/data \
    Urls=http://0.0.0.0:5080
VOLUME /data
EXPOSE 5080
WORKDIR /data
ENTRYPOINT ["dotnet", "/app/web/MoTLab.WebApp.dll"]
