"""Every string the kiosk shows, in French (default) and English. Keys are stable identifiers."""

from __future__ import annotations

from datetime import datetime

CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        "language.switch": "English",
        "idle.welcome": "Bienvenue",
        "idle.today": "Rendez-vous du jour",
        "idle.none_today": "Aucun autre rendez-vous aujourd'hui.",
        "idle.schedule_unknown": "Le planning n'est pas encore disponible.",
        "idle.help": "Pour un rendez-vous, adressez-vous à l'animateur.",
        "appointment.line": "{time} — {service}",
        "upcoming.title": "Votre rendez-vous approche",
        "upcoming.with": "{service} avec {clerk}",
        "upcoming.at": "à {time}",
        "upcoming.countdown": "Début dans {countdown}",
        "upcoming.hint": "Installez-vous, l'appel démarrera tout seul.",
        "waiting.title": "Votre conseiller va vous rejoindre",
        "waiting.hint": "Restez devant l'écran. Vous n'avez rien à faire.",
        "waiting.late": "Votre conseiller arrive dans un instant.",
        "waiting.reconnecting": "La connexion a été interrompue. Nous rappelons votre conseiller…",
        "call.connecting": "Connexion en cours…",
        "call.with": "{clerk} — {service}",
        "call.mute": "Couper le micro",
        "call.unmute": "Rallumer le micro",
        "call.camera_off": "Couper la caméra",
        "call.camera_on": "Rallumer la caméra",
        "call.hang_up": "Terminer",
        "call.confirm_question": "Voulez-vous vraiment terminer l'entretien ?",
        "call.confirm_yes": "Oui, terminer",
        "call.confirm_no": "Non, continuer",
        "call.self_view": "Vous",
        "call.muted_badge": "Micro coupé",
        "ended.title": "L'entretien est terminé",
        "ended.thanks": "Merci de votre visite.",
        "ended.clerk_no_show": "Votre conseiller n'a pas pu vous rejoindre. Adressez-vous à l'animateur.",
        "ended.call_failed": "La connexion n'a pas pu être rétablie. Adressez-vous à l'animateur.",
        "ended.cancelled": "Ce rendez-vous a été annulé. Adressez-vous à l'animateur.",
        "ended.appointment_over": "L'heure du rendez-vous est passée. Adressez-vous à l'animateur.",
        "ended.forget": "Vos informations ont été effacées de cette borne.",
        "notice.central_unreachable": "Serveur injoignable : planning enregistré utilisé.",
        "notice.not_enrolled": "Borne non reconnue par le serveur : à ré-enrôler (service informatique).",
        "notice.schedule_unreadable": "Planning reçu illisible : ancien planning conservé.",
        "notice.appointments_skipped": "Un ou plusieurs rendez-vous illisibles ont été ignorés.",
        "notice.camera_missing": "Caméra absente : une image de remplacement est envoyée.",
        "notice.microphone_missing": "Micro absent : le conseiller n'entendra pas l'usager.",
        "notice.call_setup_failing": "L'appel n'arrive pas à démarrer : nouvel essai en cours.",
        "duration.minutes": "{minutes} min {seconds:02d} s",
        "duration.seconds": "{seconds} s",
        "control.question": "{clerk} ({service}) vous propose de remplir le formulaire à votre place.",
        "control.question_hint": "Vous verrez tout ce qu'elle ou il fait, et pourrez reprendre la main à tout moment.",
        "control.accept": "Accepter",
        "control.refuse": "Refuser",
        "control.banner": "{clerk} remplit le formulaire pour vous.",
        "control.take_back": "Reprendre la main",
        "form.refused.navigation": "Cette page n'est pas autorisée pendant ce rendez-vous.",
        "form.refused.popup": "Les nouvelles fenêtres sont bloquées sur cette borne.",
        "form.refused.download": "Les téléchargements sont bloqués sur cette borne.",
        "form.refused.print": "L'impression n'est pas disponible sur cette borne.",
        "form.refused.permission": "Cette page a demandé un accès refusé par la borne.",
        "form.refused.file_chooser": "Aucun document numérisé pour l'instant.",
        "form.refused.filesystem": "L'accès aux fichiers est bloqué sur cette borne.",
    },
    "en": {
        "language.switch": "Français",
        "idle.welcome": "Welcome",
        "idle.today": "Today's appointments",
        "idle.none_today": "No more appointments today.",
        "idle.schedule_unknown": "The schedule is not available yet.",
        "idle.help": "For an appointment, please ask the staff.",
        "appointment.line": "{time} — {service}",
        "upcoming.title": "Your appointment is coming up",
        "upcoming.with": "{service} with {clerk}",
        "upcoming.at": "at {time}",
        "upcoming.countdown": "Starts in {countdown}",
        "upcoming.hint": "Take a seat, the call will start by itself.",
        "waiting.title": "Your advisor will join you",
        "waiting.hint": "Stay in front of the screen. You have nothing to do.",
        "waiting.late": "Your advisor will be with you shortly.",
        "waiting.reconnecting": "The connection was interrupted. Calling your advisor again…",
        "call.connecting": "Connecting…",
        "call.with": "{clerk} — {service}",
        "call.mute": "Mute microphone",
        "call.unmute": "Unmute microphone",
        "call.camera_off": "Turn camera off",
        "call.camera_on": "Turn camera on",
        "call.hang_up": "End",
        "call.confirm_question": "Do you really want to end the meeting?",
        "call.confirm_yes": "Yes, end it",
        "call.confirm_no": "No, continue",
        "call.self_view": "You",
        "call.muted_badge": "Microphone off",
        "ended.title": "The meeting has ended",
        "ended.thanks": "Thank you for your visit.",
        "ended.clerk_no_show": "Your advisor could not join. Please ask the staff.",
        "ended.call_failed": "The connection could not be restored. Please ask the staff.",
        "ended.cancelled": "This appointment was cancelled. Please ask the staff.",
        "ended.appointment_over": "The appointment time has passed. Please ask the staff.",
        "ended.forget": "Your information has been erased from this kiosk.",
        "notice.central_unreachable": "Server unreachable: using the saved schedule.",
        "notice.not_enrolled": "Kiosk not recognised by the server: enrol it again (IT staff).",
        "notice.schedule_unreadable": "Unreadable schedule received: keeping the previous one.",
        "notice.appointments_skipped": "One or more unreadable appointments were ignored.",
        "notice.camera_missing": "No camera: a placeholder image is sent.",
        "notice.microphone_missing": "No microphone: the advisor will not hear the visitor.",
        "notice.call_setup_failing": "The call does not start: trying again.",
        "duration.minutes": "{minutes} min {seconds:02d} s",
        "duration.seconds": "{seconds} s",
        "control.question": "{clerk} ({service}) offers to fill in the form for you.",
        "control.question_hint": "You will see everything they do, and can take control back at any time.",
        "control.accept": "Accept",
        "control.refuse": "Refuse",
        "control.banner": "{clerk} is filling in the form for you.",
        "control.take_back": "Take control back",
        "form.refused.navigation": "This page is not allowed during this appointment.",
        "form.refused.popup": "New windows are blocked on this kiosk.",
        "form.refused.download": "Downloads are blocked on this kiosk.",
        "form.refused.print": "Printing is not available on this kiosk.",
        "form.refused.permission": "This page asked for an access the kiosk refused.",
        "form.refused.file_chooser": "No scanned document yet.",
        "form.refused.filesystem": "File access is blocked on this kiosk.",
    },
}

DAYS = {
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
MONTHS = {
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


class Translator:
    def __init__(self, language: str = "fr") -> None:
        if language not in CATALOGUE:
            raise ValueError(f"unsupported language {language!r}")
        self.language = language

    def __call__(self, key: str, **values: object) -> str:
        return CATALOGUE[self.language][key].format(**values)

    def other_language(self) -> str:
        return "en" if self.language == "fr" else "fr"

    def time(self, moment: datetime) -> str:
        local = moment.astimezone()
        return f"{local.hour}h{local.minute:02d}" if self.language == "fr" else local.strftime("%H:%M")

    def date(self, moment: datetime) -> str:
        local = moment.astimezone()
        day, month = DAYS[self.language][local.weekday()], MONTHS[self.language][local.month - 1]
        if self.language == "fr":
            return f"{day} {local.day} {month} {local.year}".capitalize()
        return f"{day} {local.day} {month} {local.year}"

    def duration(self, seconds: float) -> str:
        total = max(0, int(seconds))
        if total >= 60:
            return self("duration.minutes", minutes=total // 60, seconds=total % 60)
        return self("duration.seconds", seconds=total)
