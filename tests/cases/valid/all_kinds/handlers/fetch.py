def run(request):
    return {'status': 200}
